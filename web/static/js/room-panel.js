// The panel beside the call: tabs between the chat and the referral, and the specialist's report form,
// sent without leaving the page (leaving it would end the call).

/**
 * Tabs as the ARIA authoring practices have them: one tab in the Tab order, arrow keys, Home and End move
 * between tabs and show each one's panel.
 * @param {HTMLElement} tablist
 * @returns {(id: string) => void} shows the tab with this id
 */
export function tabs(tablist) {
  const all = () => /** @type {HTMLElement[]} */ ([...tablist.querySelectorAll('[role="tab"]')]);
  /** @param {HTMLElement} chosen @param {boolean} [focus] */
  const select = (chosen, focus = false) => {
    for (const tab of all()) {
      const on = tab === chosen;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
      const panel = document.getElementById(/** @type {string} */ (tab.getAttribute("aria-controls")));
      if (panel) panel.hidden = !on;
    }
    if (focus) chosen.focus();
  };
  tablist.addEventListener("click", (event) => {
    const tab = /** @type {Element} */ (event.target).closest('[role="tab"]');
    if (tab) select(/** @type {HTMLElement} */ (tab));
  });
  tablist.addEventListener("keydown", (event) => {
    const list = all();
    const at = list.indexOf(/** @type {HTMLElement} */ (document.activeElement));
    if (at < 0) return;
    const next = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: list.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    select(list[(next + list.length) % list.length], true);
  });
  return (id) => {
    const tab = document.getElementById(id);
    if (tab) select(tab);
  };
}

/**
 * Send a form inside `panel` by fetch, and put the panel as the server answers it in its place: after
 * the post the server shows the room again (the referral completed, or the form with what was wrong), and
 * only its panel is taken from it. The call on this page goes on meanwhile.
 * @param {HTMLElement} panel
 * @param {{onreplaced: (panel: HTMLElement, ok: boolean) => void}} options
 */
export function postInPlace(panel, { onreplaced }) {
  panel.addEventListener("submit", async (event) => {
    const form = /** @type {HTMLFormElement} */ (event.target);
    event.preventDefault();
    const button = form.querySelector('button[type="submit"]');
    if (button) /** @type {HTMLButtonElement} */ (button).disabled = true;
    let answer;
    try {
      answer = await fetch(form.action, {
        method: "POST", credentials: "same-origin",
        body: new URLSearchParams(/** @type {any} */ (new FormData(form))),
      });
    } catch {
      // No answer at all (the network): send the form the ordinary way, leaving the page.
      form.submit();
      return;
    }
    const page = new DOMParser().parseFromString(await answer.text(), "text/html");
    const fresh = page.getElementById(panel.id);
    if (!fresh) {
      form.submit();
      return;
    }
    panel.replaceChildren(...fresh.childNodes);
    onreplaced(panel, answer.ok);
  });
}
