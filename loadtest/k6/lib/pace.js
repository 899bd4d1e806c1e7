// How a virtual user keeps within the server's per-user rate limits (README, "Rate limits") and
// backs off when it is refused anyway. One pace per VU, kept across its iterations (module state
// is per VU in k6): it says how long to wait before the next connect or send.

/** The budget actually used: a little under the limit, so that network jitter (a send that
 *  arrives sooner than the one before it) cannot put one too many into the server's window. */
const MARGIN = 0.9;

/**
 * @param {{ messagesPerMin: number, threadsPerMin: number, sharers: number }} budget the server's
 *   per-user limits (0: not paced) and how many VUs share one user (all of them with one TOKEN)
 */
export function createPace(budget) {
  /** @param {number} perMin */
  const interval = (perMin) => (perMin > 0 ? (60_000 * budget.sharers) / (perMin * MARGIN) : 0);
  const messageEvery = interval(budget.messagesPerMin);
  const threadEvery = interval(budget.threadsPerMin);
  let nextSendAt = 0;
  let nextThreadAt = 0;
  let notBefore = 0;

  return {
    messageEvery,
    threadEvery,
    /** Milliseconds to wait before connecting: a back-off, or the first send's turn. */
    beforeConnect() {
      return Math.max(0, notBefore - Date.now(), nextSendAt - Date.now(), nextThreadAt - Date.now());
    },
    /** @param {boolean} newThread whether the send will create a thread (it has no thread_id) */
    beforeSend(newThread) {
      return Math.max(0, notBefore - Date.now(), nextSendAt - Date.now(), newThread ? nextThreadAt - Date.now() : 0);
    },
    /** A message.send went out now. @param {boolean} newThread */
    sent(newThread) {
      const now = Date.now();
      nextSendAt = now + messageEvery;
      if (newThread) nextThreadAt = now + threadEvery;
    },
    /** The server asked to wait (retry_after_ms), or something failed: nothing goes out before then. @param {number} ms */
    backOff(ms) {
      notBefore = Math.max(notBefore, Date.now() + ms);
    },
  };
}
