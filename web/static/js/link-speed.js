// A link's speed as the device check measured it, in the reader's words: kbit/s below 1000, Mbit/s with one
// decimal above, and "more than 100 Mbit/s" past what the check's probe can tell apart (2 MiB down at
// 100 Mbit/s take 0.17 s, about the request's own overhead, so a faster figure measures the server, not
// the link). The words are the page's gettext strings; the number is formatted for the page's language.

export const MOST_KBPS = 100_000;

/**
 * @typedef {{ kbps: string, mbps: string, fasterThanMost: string }} SpeedWords
 *   "{n} kbit/s", "{n} Mbit/s" and "more than 100 Mbit/s", translated
 */

/**
 * @param {number} kbps
 * @param {SpeedWords} words
 * @param {string} [lang] the page's language (its <html lang>)
 * @returns {string}
 */
export function speed(kbps, words, lang = document.documentElement.lang) {
  if (kbps > MOST_KBPS) return words.fasterThanMost;
  if (kbps < 1000) return words.kbps.replace("{n}", String(Math.round(kbps)));
  const mbps = new Intl.NumberFormat(lang || undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  return words.mbps.replace("{n}", mbps.format(kbps / 1000));
}

/**
 * The down and up speeds in one line ("{down} down · {up} up", translated).
 * @param {number} down
 * @param {number} up
 * @param {SpeedWords & { bandwidth: string }} words
 */
export function bandwidth(down, up, words) {
  return words.bandwidth.replace("{down}", speed(down, words)).replace("{up}", speed(up, words));
}
