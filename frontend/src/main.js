// Entry point of the browser bundle. For now it mounts the editor and runs
// local edits through the OT client; the connection to the collabd server
// (socket.io-client, doc:join and doc:op) comes in a later version, so the
// page says that it is offline rather than pretending to sync.

import './style.css';
import { OTClient } from './ot/client.js';
import { createEditor } from './editor/editor.js';

function randomId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const client = new OTClient({ client: randomId(), rev: 0 });
const status = /** @type {HTMLElement} */ (document.getElementById('status'));

function showStatus() {
  status.textContent = client.unsent ? 'Offline · edits not synced (no server connection in this build)' : 'Offline · no server connection in this build';
}

createEditor({
  parent: /** @type {HTMLElement} */ (document.getElementById('editor')),
  onLocalOp(op) {
    client.edit(op);
    showStatus();
  },
});
showStatus();
