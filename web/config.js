// Where this console finds the API, and how often it refreshes its token.
// Edit this file where the console is hosted, or override per visit with the
// query string: `index.html?api=https://api.example.com&refresh=300`.
export default {
  // The API's base URL. Empty: the console's own origin (`planx serve --console`).
  api: "",
  // Seconds between token refreshes; keep it well under TOKEN_TTL (7200 by default).
  refreshSeconds: 600,
};
