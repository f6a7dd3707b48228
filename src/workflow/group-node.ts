// Legacy group nodes (protocol §5.5): `workflow>Name` instances defined in `extra.groupNodes`,
// expanded into `<instance>:<index>` nodes the way the 2023–25 frontend's GroupNodeConfig built
// the group's inputs, widgets and outputs from its inner nodes.
import { addNode, defaultTitle, type FlattenContext, INPUT_BOUNDARY } from './flatten-context.ts';
import type { GInput, GLink, GNode } from './graph.ts';
import { nodeShape } from './node-shape.ts';
import { slotType, type UiNode } from './ui-format.ts';
import { mapWidgetValues } from './widget-values.ts';
import { PASS_THROUGH_TYPES, PRIMITIVE_NODE } from './virtual-nodes.ts';

interface GroupLink {
  from: number | null;
  fromSlot: number;
  to: number;
  toSlot: number;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

/** Expands one legacy group-node instance into its inner nodes. */
export function expandGroupNode(ctx: FlattenContext, n: UiNode, base: GNode, name: string): void {
  const id = base.id;
  const def = ctx.wf.groupNodes[name];
  if (!isObject(def) || !Array.isArray(def.nodes)) {
    ctx.out.issues.push({
      severity: 'error',
      code: 'group_node_definition_missing',
      message: `group node ${id} uses "${name}", which extra.groupNodes does not define`,
      node_id: id,
      node_type: n.type,
    });
    return;
  }
  // Editor data read defensively downstream: an object is all a group's inner node must be here.
  const inner = def.nodes.filter(isObject) as unknown as UiNode[];
  const links: GroupLink[] = (Array.isArray(def.links) ? def.links : [])
    .filter((l): l is unknown[] => Array.isArray(l) && l.length >= 4)
    .map((l) => ({
      from: l[0] === null || l[0] === undefined ? null : Number(l[0]),
      fromSlot: Number(l[1]),
      to: Number(l[2]),
      toSlot: Number(l[3]),
    }));
  const internalTo = new Map<string, GroupLink>();
  const internalFrom = new Set<string>();
  const externalTo = new Map<string, GroupLink>();
  for (const l of links) {
    if (l.from === null) externalTo.set(`${l.to}:${l.toSlot}`, l);
    else {
      internalTo.set(`${l.to}:${l.toSlot}`, l);
      internalFrom.add(`${l.from}:${l.fromSlot}`);
    }
  }
  const external = new Set(
    (Array.isArray(def.external) ? def.external : [])
      .filter((e): e is unknown[] => Array.isArray(e))
      .map((e) => `${Number(e[0])}:${Number(e[1])}`),
  );

  // The group's data inputs, in the order GroupNodeConfig creates them, and its widgets.
  const dataInputs: Array<{ node: number; slot: number }> = [];
  const skips = new Map<number, Set<string>>();
  inner.forEach((node, k) => {
    const uiInputs = node.inputs ?? [];
    if (PASS_THROUGH_TYPES.has(node.type)) {
      if (!internalTo.has(`${k}:0`)) dataInputs.push({ node: k, slot: 0 });
      return;
    }
    const d = ctx.defs[node.type];
    if (!d) {
      uiInputs.forEach((inp, s) => {
        if (!inp.widget && !internalTo.has(`${k}:${s}`)) dataInputs.push({ node: k, slot: s });
      });
      return;
    }
    const skip = new Set<string>();
    for (const input of nodeShape(d).inputs) {
      const s = uiInputs.findIndex((u) => (u.widget?.name ?? u.name) === input.name);
      const linkedInside = s >= 0 && internalTo.has(`${k}:${s}`);
      if (input.widget === undefined) {
        if (s >= 0 && !linkedInside) dataInputs.push({ node: k, slot: s });
      } else if (linkedInside) skip.add(input.name);
    }
    skips.set(k, skip);
  });

  // Outputs the group exposes: those not consumed inside, plus those also used outside.
  const exposed: GLink[] = [];
  inner.forEach((node, k) => {
    (node.outputs ?? []).forEach((_o, s) => {
      if (!internalFrom.has(`${k}:${s}`) || external.has(`${k}:${s}`))
        exposed.push({ origin: `${id}:${k}`, slot: s });
    });
  });

  // Instance inputs without a widget map positionally onto the data inputs.
  const boundaryId = id + INPUT_BOUNDARY;
  const dataSlot = new Map<string, number>();
  let pos = 0;
  base.inputs.forEach((inp, j) => {
    if (inp.widget !== undefined) return;
    const d = dataInputs[pos++];
    if (d) dataSlot.set(`${d.node}:${d.slot}`, j);
  });
  addNode(ctx, {
    ...base,
    id: boundaryId,
    kind: 'boundary',
    outputs: base.inputs.map((i) => ({ name: i.name, type: i.type })),
  });
  addNode(ctx, {
    ...base,
    kind: 'boundary',
    inputs: exposed.map((link, s) => ({
      name: base.outputs[s]?.name ?? '',
      type: base.outputs[s]?.type ?? '*',
      link,
      widget: undefined,
    })),
  });

  // The instance's widgets_values are the inner widgets' values concatenated in node order.
  const saved = Array.isArray(n.widgets_values) ? n.widgets_values : undefined;
  let offset = 0;
  inner.forEach((node, k) => {
    const innerId = `${id}:${k}`;
    const inputs: GInput[] = (node.inputs ?? []).map((inp, s) => {
      const widget = inp.widget && typeof inp.widget.name === 'string' ? inp.widget.name : undefined;
      const l = internalTo.get(`${k}:${s}`);
      let link: GLink | null = null;
      if (l && l.from !== null) link = { origin: `${id}:${l.from}`, slot: l.fromSlot };
      else {
        const j = dataSlot.get(`${k}:${s}`);
        if (j !== undefined) link = { origin: boundaryId, slot: j };
      }
      return { name: widget ?? inp.name, type: slotType(inp.type), link, widget };
    });
    // A group widget linked from outside arrives as an instance input carrying that widget name.
    base.inputs.forEach((outer, j) => {
      if (outer.widget === undefined || outer.link === null) return;
      const d = ctx.defs[node.type];
      if (
        d &&
        nodeShape(d).byName.get(outer.widget)?.widget !== undefined &&
        !inputs.some((i) => i.name === outer.widget)
      ) {
        inputs.push({
          name: outer.widget,
          type: outer.type,
          link: { origin: boundaryId, slot: j },
          widget: outer.widget,
        });
      }
    });
    let preset: Map<string, unknown> | undefined;
    let presetMissing: string[] | undefined;
    const d = ctx.defs[node.type];
    if (d && saved && !PASS_THROUGH_TYPES.has(node.type) && node.type !== PRIMITIVE_NODE) {
      const m = mapWidgetValues(nodeShape(d), saved, { start: offset, skip: skips.get(k) ?? new Set() });
      offset += m.consumed;
      const own = mapWidgetValues(nodeShape(d), node.widgets_values);
      presetMissing = [];
      for (const name of m.missing) {
        if (!own.missing.includes(name) && !own.holes.includes(name)) {
          m.values.set(name, own.values.get(name));
        } else presetMissing.push(name);
      }
      preset = m.values;
    }
    addNode(ctx, {
      id: innerId,
      type: node.type,
      mode: typeof node.mode === 'number' ? node.mode : 0,
      kind: PASS_THROUGH_TYPES.has(node.type)
        ? 'reroute'
        : node.type === PRIMITIVE_NODE
          ? 'primitive'
          : 'node',
      title: defaultTitle(ctx, node),
      srName:
        typeof node.properties?.['Node name for S&R'] === 'string'
          ? node.properties['Node name for S&R']
          : undefined,
      inputs,
      outputs: (node.outputs ?? []).map((o) => ({ name: String(o?.name ?? ''), type: slotType(o?.type) })),
      saved: node.widgets_values,
      preset,
      presetMissing,
      pushed: undefined,
      properties: node.properties ?? {},
      scope: `${id}:`,
      subgraph: false,
    });
  });
}
