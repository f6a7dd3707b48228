// A form generated from a JSON Schema object (a workflow's `parameters`, a pipeline's `inputs`):
// numbers with their bounds, enums as selects, booleans as checkboxes, images (contentMediaType
// image/*) by drag-and-drop, file picker or URL, strings as text. No code per workflow.
import { html } from './lib.js';
import { useState } from './vendor/hooks.mjs';

/** True for a string property that takes an image (URL, data URI, asset ref or file name). */
export function isImage(prop) {
  return (
    prop.type === 'string' &&
    typeof prop.contentMediaType === 'string' &&
    prop.contentMediaType.startsWith('image/')
  );
}

/** Initial values: each property's default, or empty. */
export function initialValues(schema) {
  const values = {};
  for (const [name, prop] of Object.entries(schema?.properties ?? {})) {
    values[name] = prop.default !== undefined ? prop.default : prop.type === 'boolean' ? false : '';
  }
  return values;
}

/** The values to send and the problems found: empty optional fields are left out. */
export function collect(schema, values) {
  const out = {};
  const problems = {};
  const required = new Set(schema?.required ?? []);
  for (const [name, prop] of Object.entries(schema?.properties ?? {})) {
    const v = values[name];
    // The default is what the server applies anyway (and may be a large data URI).
    if (prop.default !== undefined && v === prop.default) continue;
    if (v === '' || v === undefined || v === null) {
      if (required.has(name)) problems[name] = 'required';
      continue;
    }
    if (prop.type === 'integer' || prop.type === 'number') {
      const n = Number(v);
      if (!Number.isFinite(n)) problems[name] = 'not a number';
      else if (prop.type === 'integer' && !Number.isInteger(n)) problems[name] = 'must be a whole number';
      else if (prop.minimum !== undefined && n < prop.minimum) problems[name] = `at least ${prop.minimum}`;
      else if (prop.maximum !== undefined && n > prop.maximum) problems[name] = `at most ${prop.maximum}`;
      else out[name] = n;
    } else out[name] = v;
  }
  return { values: out, problems };
}

function ImageField({ name, value, onChange }) {
  const [over, setOver] = useState(false);
  const [note, setNote] = useState(null);
  const read = (file) => {
    if (!file) return;
    if (!file.type.startsWith('image/')) {
      setNote(`${file.name} is not an image`);
      return;
    }
    const reader = new FileReader();
    reader.onload = () => {
      setNote(`${file.name} (${Math.round(file.size / 1024)} KiB)`);
      onChange(String(reader.result));
    };
    reader.readAsDataURL(file);
  };
  const drop = (e) => {
    e.preventDefault();
    setOver(false);
    read(e.dataTransfer?.files?.[0]);
  };
  const isData = typeof value === 'string' && value.startsWith('data:image/');
  return html`<div class=${`drop ${over ? 'over' : ''}`} data-testid=${`drop-${name}`}
      onDragOver=${(e) => {
        e.preventDefault();
        setOver(true);
      }} onDragLeave=${() => setOver(false)} onDrop=${drop}>
    <div>Drop an image here, <label class="link">choose a file<input type="file" accept="image/*" hidden onChange=${(e) => read(e.currentTarget.files?.[0])} /></label>, or give a URL:</div>
    <input type="text" name=${name} placeholder="https://… or asset:<id> or a file name on the instance" value=${isData ? '' : value} onInput=${(
      e,
    ) => {
      setNote(null);
      onChange(e.currentTarget.value);
    }} />
    ${note && html`<div class="hint">${note}</div>`}
    ${isData && html`<img src=${value} alt=${`${name} preview`} />`}
  </div>`;
}

function Field({ name, prop, required, value, problem, onChange }) {
  let input;
  if (Array.isArray(prop.enum)) {
    const index = prop.enum.indexOf(value);
    input = html`<select name=${name} value=${index >= 0 ? String(index) : ''} onChange=${(e) => onChange(e.currentTarget.value === '' ? '' : prop.enum[Number(e.currentTarget.value)])}>
      ${!required && html`<option value="">(default)</option>`}
      ${prop.enum.map((opt, i) => html`<option value=${String(i)}>${String(opt)}</option>`)}
    </select>`;
  } else if (prop.type === 'boolean') {
    input = html`<input type="checkbox" name=${name} checked=${value === true} onChange=${(e) => onChange(e.currentTarget.checked)} />`;
  } else if (prop.type === 'integer' || prop.type === 'number') {
    input = html`<input type="number" name=${name} min=${prop.minimum} max=${prop.maximum} step=${prop.type === 'integer' ? 1 : 'any'} value=${value} onInput=${(e) => onChange(e.currentTarget.value)} />`;
  } else if (isImage(prop)) {
    input = html`<${ImageField} name=${name} value=${value} onChange=${onChange} />`;
  } else {
    input = html`<input type="text" name=${name} value=${value} onInput=${(e) => onChange(e.currentTarget.value)} />`;
  }
  const bounds = [
    prop.minimum !== undefined && `≥ ${prop.minimum}`,
    prop.maximum !== undefined && `≤ ${prop.maximum}`,
  ]
    .filter(Boolean)
    .join(', ');
  return html`<div class="field" data-field=${name}>
    <label><strong>${name}</strong>${required && html`<span class="error"> *</span>`} <span class="muted">${prop.type ?? 'value'}${bounds ? ` (${bounds})` : ''}</span></label>
    ${input}
    ${prop.description && html`<div class="hint">${prop.description}</div>`}
    ${problem && html`<div class="error" role="alert">${name}: ${problem}</div>`}
  </div>`;
}

/** The form for `schema`; onSubmit(values) gets the collected values. */
export function SchemaForm({ schema, busy, onSubmit, submitLabel = 'Run' }) {
  const [values, setValues] = useState(() => initialValues(schema));
  const [problems, setProblems] = useState({});
  const required = new Set(schema?.required ?? []);
  const submit = (e) => {
    e.preventDefault();
    const result = collect(schema, values);
    setProblems(result.problems);
    if (Object.keys(result.problems).length === 0) onSubmit(result.values);
  };
  const entries = Object.entries(schema?.properties ?? {});
  return html`<form class="form" onSubmit=${submit} novalidate data-testid="schema-form">
    ${entries.length === 0 && html`<p class="muted">No parameters.</p>`}
    ${entries.map(([name, prop]) => html`<${Field} key=${name} name=${name} prop=${prop} required=${required.has(name)} value=${values[name]} problem=${problems[name]} onChange=${(v) => setValues((old) => ({ ...old, [name]: v }))} />`)}
    <div><button type="submit" disabled=${busy}>${submitLabel}</button></div>
  </form>`;
}
