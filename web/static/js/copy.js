// Copy buttons: <button data-copy="#field" data-status="#status" data-copied="…" data-failed="…">.
// Each copies its field's text and says so in its status element, in the page's language. The buttons are
// hidden until this script shows them: without it the field is still there to select and copy by hand.

/** @param {HTMLInputElement|HTMLTextAreaElement} field */
async function copyFrom(field) {
  try {
    await navigator.clipboard.writeText(field.value);
    return true;
  } catch {
    // No clipboard API (an insecure origin, an old browser) or no permission: the selection way.
    field.select();
    return document.execCommand("copy");
  }
}

for (const button of document.querySelectorAll("button[data-copy]")) {
  const field = document.querySelector(button.dataset.copy);
  const status = document.querySelector(button.dataset.status);
  if (!field || !status) continue;
  button.hidden = false;
  let timer = 0;
  button.addEventListener("click", async () => {
    const copied = await copyFrom(field);
    status.textContent = copied ? button.dataset.copied : button.dataset.failed;
    status.dataset.state = copied ? "copied" : "failed";
    clearTimeout(timer);
    timer = setTimeout(() => { status.textContent = ""; delete status.dataset.state; }, 8000);
  });
}
