// Placeholder until this view lands.
import { html } from './lib.js';

/** Not built yet. */
export function MetricsView() {
  return html`<p class="muted">This view is not built yet.</p>`;
}
