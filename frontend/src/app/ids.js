// Document and client ids.

import { DOC_ID } from './contract.js';

/** isDocId reports whether id is a document id the server accepts. */
export function isDocId(id) {
  return typeof id === 'string' && DOC_ID.test(id);
}

/**
 * docIdFromPath returns the document id of an editor URL path (/d/{id}), or
 * null when path is not an editor path or the id is invalid.
 * @param {string} path location.pathname
 */
export function docIdFromPath(path) {
  const m = /^\/d\/([^/]+)\/?$/.exec(path);
  if (!m) return null;
  let id;
  try {
    id = decodeURIComponent(m[1]);
  } catch {
    return null;
  }
  return isDocId(id) ? id : null;
}

const ADJECTIVES = [
  'amber', 'brave', 'calm', 'clever', 'cosy', 'crisp', 'eager', 'fancy', 'gentle', 'golden',
  'happy', 'jolly', 'kind', 'lively', 'lucky', 'merry', 'mellow', 'nimble', 'proud', 'quiet',
  'rapid', 'shiny', 'silver', 'sunny', 'swift', 'tidy', 'vivid', 'warm', 'witty', 'zesty',
];
const NOUNS = [
  'badger', 'beacon', 'brook', 'cedar', 'comet', 'coral', 'falcon', 'fern', 'harbor', 'heron',
  'island', 'lantern', 'maple', 'meadow', 'otter', 'panda', 'pebble', 'pine', 'quill', 'raven',
  'river', 'robin', 'sparrow', 'summit', 'thistle', 'tiger', 'valley', 'willow', 'wren', 'zephyr',
];

/**
 * readableId returns a new document id such as "brave-otter-417".
 * @param {(n: number) => number} [randInt] integer in [0, n); crypto by default
 */
export function readableId(randInt = cryptoInt) {
  return `${ADJECTIVES[randInt(ADJECTIVES.length)]}-${NOUNS[randInt(NOUNS.length)]}-${100 + randInt(900)}`;
}

/**
 * readableName returns a generated display name such as "Swift Heron",
 * from the same word lists as readableId.
 * @param {(n: number) => number} [randInt] integer in [0, n); crypto by default
 */
export function readableName(randInt = cryptoInt) {
  const cap = (w) => w[0].toUpperCase() + w.slice(1);
  return `${cap(ADJECTIVES[randInt(ADJECTIVES.length)])} ${cap(NOUNS[randInt(NOUNS.length)])}`;
}

/** randomId returns 24 hex digits from crypto.getRandomValues: a client id. */
export function randomId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function cryptoInt(n) {
  const a = new Uint32Array(1);
  crypto.getRandomValues(a);
  return a[0] % n;
}

/** Colours for people, readable on white as text and as a caret. */
export const COLORS = ['#d93025', '#e37400', '#188038', '#1a73e8', '#9334e6', '#007b83', '#b06000', '#3949ab', '#c2185b', '#827717'];

/** randomColor picks one of COLORS. */
export function randomColor(randInt = cryptoInt) {
  return COLORS[randInt(COLORS.length)];
}
