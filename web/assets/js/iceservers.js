// The STUN and TURN servers a WHIP/WHEP endpoint names (RFC 9725 4.6):
// an OPTIONS request with the session's token answers them as Link
// headers, TURN credentials included, before the peer connection is made.

// fetchIceServers asks endpoint for its ICE servers; an answer without
// any, or an error answer, is no servers (the browser then connects
// directly). A network failure throws, like the POST after it would.
export async function fetchIceServers(endpoint, token) {
  const res = await fetch(endpoint, {
    method: "OPTIONS",
    headers: { Authorization: `Bearer ${token}` },
    cache: "no-store",
  });
  if (!res.ok) return [];
  return parseIceServerLinks(res.headers.get("Link"));
}

// parseIceServerLinks reads the links with rel="ice-server" out of a Link
// header value (RFC 8288; fetch joins repeated headers with ", ") into
// RTCIceServer dictionaries. Quoted values may hold commas, semicolons
// and escaped quotes; a link it cannot read is skipped.
export function parseIceServerLinks(header) {
  const servers = [];
  const s = header || "";
  let i = 0;
  const space = () => {
    while (i < s.length && (s[i] === " " || s[i] === "\t")) i++;
  };
  // token reads up to one of stops or a space.
  const token = (stops) => {
    const start = i;
    while (i < s.length && !stops.includes(s[i]) && s[i] !== " " && s[i] !== "\t") i++;
    return s.slice(start, i);
  };
  const quoted = () => {
    let v = "";
    i++; // the opening quote
    while (i < s.length && s[i] !== '"') {
      if (s[i] === "\\" && i + 1 < s.length) i++;
      v += s[i++];
    }
    i++; // the closing quote
    return v;
  };
  // skip moves past the rest of a link: to after the next comma outside
  // quotes and angle brackets.
  const skip = () => {
    while (i < s.length && s[i] !== ",") {
      if (s[i] === '"') quoted();
      else if (s[i] === "<") i = s.indexOf(">", i) < 0 ? s.length : s.indexOf(">", i) + 1;
      else i++;
    }
    i++;
  };
  while (i < s.length) {
    space();
    if (s[i] !== "<") {
      skip();
      continue;
    }
    const end = s.indexOf(">", i);
    if (end < 0) break;
    const url = s.slice(i + 1, end).trim();
    i = end + 1;
    const params = {};
    for (;;) {
      space();
      if (s[i] !== ";") break;
      i++;
      space();
      const name = token(";,=").toLowerCase();
      space();
      let value = "";
      if (s[i] === "=") {
        i++;
        space();
        value = s[i] === '"' ? quoted() : token(";,");
      }
      if (name && !(name in params)) params[name] = value;
    }
    skip();
    if (!url || !(params.rel || "").split(/\s+/).includes("ice-server")) continue;
    const server = { urls: url };
    if (params.username !== undefined) {
      server.username = params.username;
      server.credential = params.credential ?? "";
    }
    servers.push(server);
  }
  return servers;
}
