// Times a patient reads on their own device's clock. The server writes each <time data-local datetime="…">
// on the hospital's clock, labelled (what shows without script); this rewrites it into the browser's zone,
// with that zone's short name, in the page's language.

// dateStyle/timeStyle cannot be combined with timeZoneName, so the parts are named one by one.
const PARTS = /** @type {const} */ ({
  weekday: "short", year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit",
  timeZoneName: "short",
});

/**
 * A moment in words on `timeZone`'s clock (this browser's by default), the zone's short name last as on
 * every other page: "Thu, May 2, 2030, 11:30 PM PDT", "2030年5月2日周四 23:30 GMT-7" (Chinese puts it
 * before the time by itself).
 * @param {Date | number} moment
 * @param {string} [locale] the page's language by default
 * @param {string} [timeZone]
 * @returns {string}
 */
export function localText(moment, locale = document.documentElement.lang, timeZone = undefined) {
  const parts = new Intl.DateTimeFormat(locale || undefined, { ...PARTS, timeZone }).formatToParts(moment);
  const zone = parts.find((part) => part.type === "timeZoneName")?.value;
  const rest = parts.filter((part) => part.type !== "timeZoneName").map((part) => part.value).join("")
    .replace(/\s+/g, " ").trim();
  return zone ? `${rest} ${zone}` : rest;
}

/**
 * Rewrite one <time datetime> into this browser's zone; its title names the zone in full (IANA).
 * @param {HTMLTimeElement} element
 * @param {Date | number} [moment] a new moment for it (its datetime follows), else its datetime
 */
export function localize(element, moment = undefined) {
  if (moment !== undefined) element.dateTime = new Date(moment).toISOString();
  const at = Date.parse(element.dateTime);
  if (Number.isNaN(at)) return;
  element.textContent = localText(at);
  element.title = Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** Every <time data-local> under `root`. */
export function localizeAll(root = document) {
  for (const element of root.querySelectorAll("time[data-local]")) localize(/** @type {HTMLTimeElement} */ (element));
}

localizeAll();
