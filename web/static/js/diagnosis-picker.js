// Diagnosis fields of the report form: as the specialist types a code or a word, the field's suggestions are
// filled from GET /api/icd10?q= (the ICD-10 list in use). Listens on the document, so a form put in place
// later (the room's panel is replaced after each post) is served too. Without this script the code is typed
// in full and the server checks it all the same.

const DELAY_MS = 200;
/** @type {WeakMap<HTMLInputElement, {timer: number, asked: string}>} */
const pending = new WeakMap();

/** @param {HTMLInputElement} input */
async function suggest(input) {
  const list = document.getElementById(input.getAttribute("list") || "");
  const query = input.value.trim();
  const state = pending.get(input);
  if (!list || !state || !query || query === state.asked) return;
  state.asked = query;
  const response = await fetch(`/api/icd10?q=${encodeURIComponent(query)}`, { credentials: "same-origin" });
  if (!response.ok || query !== input.value.trim()) return;
  /** @type {{diagnoses: {code: string, title: string}[]}} */
  const { diagnoses } = await response.json();
  list.replaceChildren(...diagnoses.map((d) => {
    const option = document.createElement("option");
    option.value = d.code;
    option.label = `${d.code} ${d.title}`;
    return option;
  }));
}

document.addEventListener("input", (event) => {
  const input = /** @type {HTMLElement} */ (event.target);
  if (!(input instanceof HTMLInputElement) || !input.hasAttribute("data-icd10")) return;
  const state = pending.get(input) || { timer: 0, asked: "" };
  pending.set(input, state);
  clearTimeout(state.timer);
  state.timer = window.setTimeout(() => suggest(input), DELAY_MS);
});
