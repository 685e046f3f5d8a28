// A page's "Print" button: hidden until this script shows it, since without script it would do nothing
// (the browser's own print command prints the page the same way, by app.css's print rules).
const button = document.getElementById("print-request");
if (button) {
  button.hidden = false;
  button.addEventListener("click", () => window.print());
}
