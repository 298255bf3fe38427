// The live preview of a Markdown document, beside the text (on narrow
// screens instead of it). It renders after the text changed, on a short
// trailing timer armed by the change (no polling), with the renderer of
// markdown.js, loaded on first use.

import { EditorView } from '@codemirror/view';

/** Rendering waits this long after the last change (ms), longer for big texts. */
const RENDER_MS = 120;

export class Preview {
  /**
   * @param {HTMLElement} el the preview element
   * @param {() => string} text returns the current text
   */
  constructor(el, text) {
    this.el = el;
    this.text = text;
    this.on = false;
    this.timer = 0;
    this.lastMs = 0;
    /** @type {Promise<typeof import('./render-markdown.js')> | null} */
    this.renderer = null;
    /** renders so far (for tests) */
    this.renders = 0;
  }

  /** extension returns the CodeMirror extension that arms the preview on every change. */
  extension() {
    return EditorView.updateListener.of((u) => {
      if (u.docChanged) this.schedule();
    });
  }

  /** show turns the preview on or off. */
  show(on) {
    this.on = on;
    this.el.hidden = !on;
    if (on) this.render();
    else clearTimeout(this.timer);
  }

  schedule() {
    if (!this.on || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = 0;
      this.render();
    }, Math.max(RENDER_MS, 10 * this.lastMs));
  }

  async render() {
    if (!this.renderer) this.renderer = import('./render-markdown.js');
    const { renderMarkdown } = await this.renderer;
    if (!this.on) return;
    const t0 = performance.now();
    const frag = renderMarkdown(this.text());
    this.el.replaceChildren(frag);
    this.lastMs = performance.now() - t0;
    this.renders++;
    this.el.dataset.renders = String(this.renders);
  }
}
