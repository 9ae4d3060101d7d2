// Launch demo: focus the search box on the members page.
document.addEventListener("DOMContentLoaded", function () {
  var search = document.querySelector("input[name=q]");
  if (search) { search.focus(); }
});
