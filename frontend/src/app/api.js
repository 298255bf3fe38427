// The HTTP API of collabd and the socket factory, with the optional token.

import { io } from 'socket.io-client';

const TOKEN_KEY = 'collabd:token';

/**
 * token returns the access token: from the URL fragment (#token=...; it is
 * then stored and removed from the address bar) or from localStorage.
 */
export function token() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    const t = decodeURIComponent(m[1]);
    try {
      localStorage.setItem(TOKEN_KEY, t);
    } catch {
      // private mode: use it for this page only
    }
    history.replaceState(null, '', location.pathname + location.search);
    return t;
  }
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

/** getJSON fetches a JSON resource of the HTTP API. */
export async function getJSON(path) {
  const t = token();
  const res = await fetch(path, { headers: t ? { Authorization: `Bearer ${t}` } : {} });
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`;
    try {
      const body = await res.json();
      if (body && body.error && body.error.message) msg = body.error.message;
    } catch {
      // not JSON
    }
    throw new Error(msg);
  }
  return res.json();
}

/**
 * connector returns a function that makes a new socket.io-client socket for
 * the page's server, not yet connected.
 * @param {string} [url] the server; the page's own origin by default
 */
export function connector(url) {
  const t = token();
  return () =>
    io(url, {
      autoConnect: false,
      forceNew: true,
      reconnectionDelay: 500,
      reconnectionDelayMax: 3000,
      randomizationFactor: 0.3,
      auth: t ? { token: t } : undefined,
    });
}
