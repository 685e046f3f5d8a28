// The attachment viewer beside the call and on the referral page: a referral's images (zoom, pan, fit,
// rotate, by buttons, wheel, pinch, drag and keys), PDFs in the browser's own viewer, and DICOM images that
// the server draws as PNG, with their frames and the facts to read them by.
//
// Written here rather than vendored: the pan and zoom are forty lines, and a library would still need the
// rotation, the keys and the labels in the reader's language that this page needs.
//
// Every attachment link in a list marked data-viewer opens in the viewer named by it; without this script
// (or with a modifier key, to open a tab) the link is the file itself. The page's markup (the viewer and its
// words) may be replaced while the page lives (the room's panel is, after the opinion is sent), so nothing is
// held from it between openings.

const ZOOM_STEP = 1.25;
const PAN_STEP = 40; // pixels per arrow key
const MIN_SCALE = 0.05;
const MAX_SCALE = 32;

/**
 * The picture's place in the stage: its centre `x`, `y` pixels from the stage's centre, drawn `scale` times
 * its own size, turned `rotation` degrees clockwise.
 * @typedef {{x: number, y: number, scale: number, rotation: number}} View
 */

/**
 * The view zoomed by `factor` about `point` (pixels from the stage's centre): the picture's point under it
 * stays under it, as a map's does.
 * @param {View} view @param {number} factor @param {{x: number, y: number}} point
 * @returns {View}
 */
export function zoomAt(view, factor, point) {
  const scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, view.scale * factor));
  const applied = scale / view.scale;
  return { ...view, scale, x: point.x - (point.x - view.x) * applied, y: point.y - (point.y - view.y) * applied };
}

/**
 * The whole picture in the stage, centred, at its turn.
 * @param {{width: number, height: number}} picture @param {{width: number, height: number}} stage
 * @param {number} rotation
 * @returns {View}
 */
export function fitted(picture, stage, rotation) {
  const turned = rotation % 180 !== 0;
  const [w, h] = turned ? [picture.height, picture.width] : [picture.width, picture.height];
  const scale = Math.min(stage.width / w, stage.height / h) || 1;
  return { x: 0, y: 0, scale, rotation };
}

/** @param {HTMLElement} viewer */
function words(viewer) {
  return JSON.parse(/** @type {HTMLElement} */ (viewer.querySelector("script[type='application/json']")).textContent ?? "{}");
}

/** @param {string} text @param {Record<string, string | number>} values */
function fill(text, values) {
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

/**
 * One viewer's controls, wired once per element (the page may put a fresh viewer in its place).
 * @param {HTMLElement} viewer
 */
function controller(viewer) {
  const existing = /** @type {any} */ (viewer).attachmentViewer;
  if (existing) return existing;
  const part = (/** @type {string} */ name) => /** @type {HTMLElement} */ (viewer.querySelector(`[data-part="${name}"]`));
  const stage = part("stage");
  const image = /** @type {HTMLImageElement} */ (part("image"));
  const frame = /** @type {HTMLElement} */ (part("pdf"));
  const status = part("status");
  const zoomShown = part("zoom");
  const frames = part("frames");
  const frameInput = /** @type {HTMLInputElement} */ (part("frame"));
  const frameShown = part("frame-of");
  const facts = part("facts");
  const full = /** @type {HTMLAnchorElement} */ (part("full"));
  const strings = words(viewer);
  /** @type {View} */
  let view = { x: 0, y: 0, scale: 1, rotation: 0 };
  /** @type {HTMLAnchorElement | null} */
  let opener = null;
  /** @type {AbortController | null} */
  let loading = null;
  let fitOnLoad = true;

  const stageSize = () => ({ width: stage.clientWidth, height: stage.clientHeight });
  const centre = (/** @type {number} */ clientX, /** @type {number} */ clientY) => {
    const box = stage.getBoundingClientRect();
    return { x: clientX - box.left - box.width / 2, y: clientY - box.top - box.height / 2 };
  };
  const draw = () => {
    image.style.transform =
      `translate(-50%, -50%) translate(${view.x}px, ${view.y}px) rotate(${view.rotation}deg) scale(${view.scale})`;
    zoomShown.textContent = `${Math.round(view.scale * 100)}%`;
    stage.dataset.scale = view.scale.toFixed(4);
    stage.dataset.rotation = String(view.rotation);
  };
  const fit = () => {
    if (!image.naturalWidth) return;
    view = fitted({ width: image.naturalWidth, height: image.naturalHeight }, stageSize(), view.rotation);
    draw();
  };
  const zoom = (/** @type {number} */ factor, point = { x: 0, y: 0 }) => {
    view = zoomAt(view, factor, point);
    draw();
  };
  const say = (/** @type {string} */ text, error = false) => {
    status.textContent = text;
    status.classList.toggle("error", error);
  };

  image.addEventListener("load", () => {
    viewer.dataset.loaded = "true";
    if (fitOnLoad) fit();
    fitOnLoad = false;
    say("");
  });
  image.addEventListener("error", () => say(strings.errors.default, true));

  viewer.addEventListener("click", (event) => {
    const button = /** @type {HTMLElement} */ (event.target).closest("button[data-act]");
    if (!button) return;
    const act = /** @type {HTMLElement} */ (button).dataset.act;
    if (act === "zoom-in") zoom(ZOOM_STEP);
    else if (act === "zoom-out") zoom(1 / ZOOM_STEP);
    else if (act === "fit") fit();
    else if (act === "rotate") { view = { ...view, rotation: (view.rotation + 90) % 360 }; fit(); }
    else if (act === "previous-frame") showFrame(Number(frameInput.value) - 1);
    else if (act === "next-frame") showFrame(Number(frameInput.value) + 1);
    else if (act === "close") close();
  });
  frameInput.addEventListener("change", () => showFrame(Number(frameInput.value)));

  stage.addEventListener("wheel", (event) => {
    event.preventDefault(); // the wheel zooms the picture, not the page, while over it
    zoom(Math.exp(-event.deltaY * 0.0015), centre(event.clientX, event.clientY));
  }, { passive: false });

  stage.addEventListener("keydown", (event) => {
    const moves = { ArrowLeft: [PAN_STEP, 0], ArrowRight: [-PAN_STEP, 0], ArrowUp: [0, PAN_STEP], ArrowDown: [0, -PAN_STEP] };
    const key = event.key;
    if (key === "+" || key === "=") zoom(ZOOM_STEP);
    else if (key === "-" || key === "_") zoom(1 / ZOOM_STEP);
    else if (key === "0") fit();
    else if (key === "r" || key === "R") { view = { ...view, rotation: (view.rotation + 90) % 360 }; fit(); }
    else if (key in moves) {
      const [dx, dy] = moves[/** @type {keyof typeof moves} */ (key)];
      view = { ...view, x: view.x + dx, y: view.y + dy };
      draw();
    } else return;
    event.preventDefault();
  });

  // Drag to move; two fingers to pinch. Pointer events cover mouse, pen and touch alike.
  /** @type {Map<number, {x: number, y: number}>} */
  const pointers = new Map();
  const spread = () => {
    const [a, b] = [...pointers.values()];
    return { distance: Math.hypot(a.x - b.x, a.y - b.y), middle: { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 } };
  };
  stage.addEventListener("pointerdown", (event) => {
    try {
      stage.setPointerCapture(event.pointerId);
    } catch {
      // a pointer the browser no longer knows (lifted already): follow it without capture
    }
    pointers.set(event.pointerId, centre(event.clientX, event.clientY));
    stage.classList.add("dragging");
  });
  stage.addEventListener("pointermove", (event) => {
    const before = pointers.get(event.pointerId);
    if (!before) return;
    const now = centre(event.clientX, event.clientY);
    if (pointers.size === 2) {
      const was = spread();
      pointers.set(event.pointerId, now);
      const is = spread();
      view = { ...view, x: view.x + is.middle.x - was.middle.x, y: view.y + is.middle.y - was.middle.y };
      if (was.distance > 0) view = zoomAt(view, is.distance / was.distance, is.middle);
    } else {
      pointers.set(event.pointerId, now);
      view = { ...view, x: view.x + now.x - before.x, y: view.y + now.y - before.y };
    }
    draw();
  });
  const release = (/** @type {PointerEvent} */ event) => {
    pointers.delete(event.pointerId);
    if (!pointers.size) stage.classList.remove("dragging");
  };
  stage.addEventListener("pointerup", release);
  stage.addEventListener("pointercancel", release);

  /** @param {number} wanted from 1 */
  async function showFrame(wanted) {
    const total = Number(frameInput.max);
    const number = Math.min(total, Math.max(1, wanted));
    frameInput.value = String(number);
    if (opener) await loadDicom(opener, number - 1);
  }

  /** @param {HTMLAnchorElement} link @param {number} index from 0 */
  async function loadDicom(link, index) {
    loading?.abort();
    loading = new AbortController();
    say(strings.loading);
    viewer.dataset.loaded = "false";
    let answer;
    try {
      const response = await fetch(`/api/attachments/${link.dataset.id}/preview?frame=${index}`, {
        credentials: "same-origin", signal: loading.signal,
      });
      answer = await response.json();
      if (!response.ok) {
        say(strings.errors[answer?.error?.code] ?? strings.errors.default, true);
        for (const name of ["stage", "tools", "keys", "frames"]) part(name).hidden = true;
        return;
      }
    } catch (error) {
      if (/** @type {Error} */ (error).name !== "AbortError") say(strings.errors.default, true);
      return;
    }
    for (const name of ["stage", "tools", "keys"]) part(name).hidden = false;
    viewer.dataset.frame = String(answer.frame);
    frames.hidden = answer.frames < 2;
    frameInput.max = String(answer.frames);
    frameInput.value = String(answer.frame + 1);
    frameShown.textContent = fill(strings.frameOf, { n: answer.frame + 1, total: answer.frames });
    facts.replaceChildren();
    const rows = [
      ["modality", answer.modality], ["studyDate", answer.study_date], ["bodyPart", answer.body_part],
      ["seriesDescription", answer.series_description], ["size", `${answer.width} × ${answer.height}`],
    ];
    if (answer.window) {
      const source = answer.window.source === "file" ? strings.windowFromFile : strings.windowFromRange;
      rows.push(["window", fill(strings.windowValue, {
        center: Math.round(answer.window.center * 10) / 10, width: Math.round(answer.window.width * 10) / 10, source,
      })]);
    }
    for (const [name, value] of rows) {
      if (value === undefined || value === null || value === "") continue;
      const term = document.createElement("dt");
      term.textContent = strings.facts[name];
      const detail = document.createElement("dd");
      detail.textContent = value;
      detail.dataset.fact = name;
      facts.append(term, detail);
    }
    facts.hidden = false;
    image.src = answer.image;
  }

  /** @param {HTMLAnchorElement} link */
  function open(link) {
    opener?.removeAttribute("aria-current");
    opener = link;
    link.setAttribute("aria-current", "true");
    const kind = link.dataset.kind ?? "file";
    const name = link.textContent?.trim() ?? "";
    viewer.hidden = false;
    viewer.dataset.kind = kind;
    viewer.dataset.loaded = "false";
    part("title").textContent = name;
    full.href = link.getAttribute("href") ?? "";
    full.textContent = strings.full[kind] ?? strings.full.file;
    stage.setAttribute("aria-label", fill(strings.imageLabel, { name }));
    image.alt = name;
    const picture = kind === "image" || kind === "dicom";
    part("tools").hidden = !picture;
    part("keys").hidden = !picture;
    stage.hidden = !picture;
    frames.hidden = true;
    facts.hidden = true;
    frame.hidden = kind !== "pdf";
    loading?.abort();
    fitOnLoad = true;
    view = { x: 0, y: 0, scale: 1, rotation: 0 };
    image.removeAttribute("src");
    say(picture ? strings.loading : "");
    if (kind === "pdf") {
      frame.title = name;
      frame.setAttribute("src", link.getAttribute("href") ?? "");
    } else {
      frame.removeAttribute("src");
    }
    if (kind === "image") image.src = link.getAttribute("href") ?? "";
    else if (kind === "dicom") loadDicom(link, 0);
    part("title").focus();
    viewer.scrollIntoView({ block: "nearest" });
  }

  function close() {
    loading?.abort();
    viewer.hidden = true;
    frame.removeAttribute("src");
    image.removeAttribute("src");
    opener?.removeAttribute("aria-current");
    opener?.focus();
    opener = null;
  }

  const api = { open };
  /** @type {any} */ (viewer).attachmentViewer = api;
  return api;
}

document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = /** @type {HTMLElement} */ (event.target).closest("[data-viewer] a[data-kind]");
  if (!link) return;
  const list = /** @type {HTMLElement} */ (link.closest("[data-viewer]"));
  const viewer = document.getElementById(/** @type {string} */ (list.dataset.viewer));
  if (!viewer) return;
  event.preventDefault();
  controller(viewer).open(/** @type {HTMLAnchorElement} */ (link));
});
