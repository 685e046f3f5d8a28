// When the room lets people in: the countdown to its opening, on the server's clock rather than this
// device's (which may be minutes off), and the moment to join.

/**
 * @typedef {{countdownDays: string, countdownHours: string, countdownMinutes: string, countdownSeconds: string,
 *            opening: string}} CountdownStrings
 */

/**
 * The server's clock as this page can tell it: the time the server rendered the page at, moved on by how
 * long this device says has passed since. (The page's way here takes a moment, so it runs that much behind.)
 * @param {string} serverNow ISO 8601
 * @param {number} [loadedAt] this device's time when the page read serverNow
 * @returns {() => number} milliseconds since the epoch
 */
export function serverClock(serverNow, loadedAt = Date.now()) {
  const offset = Date.parse(serverNow) - loadedAt;
  return () => Date.now() + offset;
}

/**
 * How long until the opening, in words: "2 d 3 h", "1 h 05 min", "4 min 09 s", "9 s".
 * @param {number} ms
 * @param {CountdownStrings} strings
 */
export function countdownText(ms, strings) {
  if (ms <= 0) return strings.opening;
  const total = Math.ceil(ms / 1000);
  const d = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const two = (/** @type {number} */ n) => String(n).padStart(2, "0");
  if (d > 0) return strings.countdownDays.replace("{d}", String(d)).replace("{h}", String(h));
  if (h > 0) return strings.countdownHours.replace("{h}", String(h)).replace("{m}", two(m));
  if (m > 0) return strings.countdownMinutes.replace("{m}", String(m)).replace("{s}", two(s));
  return strings.countdownSeconds.replace("{s}", String(s));
}

/**
 * Count down in `element` until `opensAt` by `clock`, and resolve then. A hidden tab's timers may run late
 * (browsers slow them down), so every tick reads the clock afresh rather than counting ticks.
 * @param {{opensAt: number, clock: () => number, element: HTMLElement, strings: CountdownStrings,
 *          signal?: AbortSignal}} options  signal: stop counting (another countdown took over)
 * @returns {Promise<void>}
 */
export function untilOpen({ opensAt, clock, element, strings, signal }) {
  return new Promise((resolve) => {
    const tick = () => {
      if (signal?.aborted) return;
      const left = opensAt - clock();
      element.textContent = countdownText(left, strings);
      if (left <= 0) {
        resolve();
        return;
      }
      // Wake at the next whole second of the countdown, so the text never skips one.
      setTimeout(tick, (left % 1000) || 1000);
    };
    tick();
  });
}
