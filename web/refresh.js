// Keeps a signed-in tab's token fresh before it expires: `GET /refresh_code`,
// then `POST /refresh_token` with that code, every `seconds`. Each tab runs
// its own; the page cannot read the token (HttpOnly), so it refreshes on a
// schedule rather than at the token's expiry.

/** After a failed refresh (network, a lost code), try again this soon. */
const RETRY_SECONDS = 30;

export class Refresher {
  constructor(api, seconds) {
    this.api = api;
    this.seconds = seconds;
    this.timer = null;
    this.running = false;
    /** The last outcome: `{ok, at, error?}`; also read by the browser tests. */
    this.last = null;
    this.count = 0;
  }

  start() {
    this.running = true;
    this.#schedule(this.seconds);
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = null;
  }

  /** Refreshes now (and restarts the schedule); resolves to the outcome. */
  async refresh() {
    clearTimeout(this.timer);
    try {
      const { code } = await this.api.get("/refresh_code");
      await this.api.post("/refresh_token", { code });
      this.count += 1;
      this.last = { ok: true, at: new Date() };
    } catch (error) {
      // A 401 has already sent the console to sign-in, which stops us.
      this.last = { ok: false, at: new Date(), error };
    }
    if (this.running) {
      this.#schedule(this.last.ok ? this.seconds : Math.min(RETRY_SECONDS, this.seconds));
    }
    return this.last;
  }

  #schedule(seconds) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), seconds * 1000);
  }
}
