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
 * putText replaces a document's text over the HTTP API (PUT /api/docs/{id}
 * with If-Match: rev): the server diffs the text at rev against text and
 * submits that as one op, transformed over everything after rev, so edits
 * made meanwhile are kept. Resolves with the new revision.
 * @param {string} doc
 * @param {number} rev the revision the replaced text was seen at
 * @param {string} text
 * @param {string} [base] the server's origin
 */
export async function putText(doc, rev, text, base = '') {
  const t = token();
  const headers = { 'Content-Type': 'text/plain; charset=utf-8', 'If-Match': String(rev) };
  if (t) headers.Authorization = `Bearer ${t}`;
  const res = await fetch(`${base}/api/docs/${encodeURIComponent(doc)}`, { method: 'PUT', headers, body: text });
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON
  }
  if (!res.ok) throw new Error(body && body.error && body.error.message ? body.error.message : `${res.status} ${res.statusText}`);
  return body ? body.rev : undefined;
}

/**
 * connector returns a function that makes a new socket.io-client socket for
 * the page's server, not yet connected.
 * @param {string} [url] the server; the page's own origin by default
 */
export function connector(url, t = token()) {
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

/**
 * tokenClaims returns the claims of the access token ({sub, edit, view,
 * exp}), decoded without verification (the server verifies; the page only
 * uses them to show the right name and to know ahead whether it may edit),
 * or null without a readable token.
 */
export function tokenClaims(t = token()) {
  const part = t.split('.')[1];
  if (!part) return null;
  try {
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '='));
    const c = JSON.parse(decodeURIComponent(escape(json)));
    return c && typeof c === 'object' ? c : null;
  } catch {
    return null;
  }
}

/**
 * pathMatch reports whether name matches pattern in the syntax of Go's
 * path.Match (what token patterns use): * any run of non-/ characters, ?
 * one, [a-z] and [^a-z] classes, \ escapes. A malformed pattern matches
 * nothing.
 */
export function pathMatch(pattern, name) {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\') {
      if (++i >= pattern.length) return false;
      re += escapeRe(pattern[i]);
    } else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) return false;
      let cls = pattern.slice(i + 1, end);
      let neg = false;
      if (cls.startsWith('^')) {
        neg = true;
        cls = cls.slice(1);
      }
      if (cls === '') return false;
      re += `[${neg ? '^/' : ''}${cls.replace(/[\]\\^]/g, (m) => `\\${m}`)}]`;
      i = end;
    } else re += escapeRe(c);
  }
  try {
    return new RegExp(`${re}$`, 'u').test(name);
  } catch {
    return false;
  }
}

function escapeRe(c) {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, (m) => `\\${m}`);
}

/**
 * access returns "edit", "view" or "none" for doc according to the token,
 * or "edit" without a token (auth off, or the server will say).
 */
export function access(doc, claims = tokenClaims()) {
  if (!claims) return 'edit';
  const any = (list) => Array.isArray(list) && list.some((p) => typeof p === 'string' && pathMatch(p, doc));
  if (any(claims.edit)) return 'edit';
  if (any(claims.view)) return 'view';
  return 'none';
}
