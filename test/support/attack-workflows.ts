// Hostile workflows from the security review (issue 12 points 2 and 17): a UI workflow whose
// subgraphs each hold `fanout` instances of the next level (fanout^levels leaf nodes from a few KB),
// and a flat API prompt of N nodes.

/**
 * A UI workflow of `levels` nested subgraph levels, each holding `fanout` instances of the next;
 * the last level holds `fanout` EmptyImage nodes: fanout^levels nodes (6 levels: 1,000,000).
 */
export function nestedSubgraphWorkflow(levels: number, fanout = 10): Record<string, unknown> {
  const id = (k: number) => `00000000-0000-4000-8000-${String(k).padStart(12, '0')}`;
  const definitions: Array<Record<string, unknown>> = [];
  for (let k = 0; k < levels; k++) {
    const nodes =
      k === levels - 1
        ? Array.from({ length: fanout }, (_, i) => ({
            id: i + 1,
            type: 'EmptyImage',
            mode: 0,
            inputs: [],
            outputs: [],
            widgets_values: [8, 8, 1, 0],
          }))
        : Array.from({ length: fanout }, (_, i) => ({
            id: i + 1,
            type: id(k + 1),
            mode: 0,
            inputs: [],
            outputs: [],
          }));
    definitions.push({ id: id(k), name: `level ${k}`, nodes, links: [], inputs: [], outputs: [] });
  }
  return {
    version: 0.4,
    last_node_id: 2,
    last_link_id: 0,
    nodes: [
      { id: 1, type: id(0), mode: 0, inputs: [], outputs: [] },
      {
        id: 2,
        type: 'PreviewAny',
        mode: 0,
        inputs: [{ name: 'source', type: '*', link: null }],
        outputs: [],
      },
    ],
    links: [],
    definitions: { subgraphs: definitions },
    extra: {},
  };
}

/** An API prompt of `n` nodes: a chain of PrimitiveInt nodes ending in PreviewAny. */
export function hugeApiPrompt(n: number): Record<string, unknown> {
  const prompt: Record<string, unknown> = {};
  for (let i = 1; i < n; i++) prompt[String(i)] = { class_type: 'PrimitiveInt', inputs: { value: i } };
  prompt[String(n)] = { class_type: 'PreviewAny', inputs: { source: ['1', 0] } };
  return prompt;
}

/** `n` SaveImage nodes whose filename_prefix each asks text replacement for another node's widget. */
export function replacementHeavyWorkflow(n: number): Record<string, unknown> {
  const nodes: Array<Record<string, unknown>> = [];
  const links: unknown[] = [];
  nodes.push({
    id: 1,
    type: 'EmptyImage',
    mode: 0,
    inputs: [],
    outputs: [{ name: 'IMAGE', type: 'IMAGE', links: [] }],
    widgets_values: [8, 8, 1, 0],
  });
  for (let i = 2; i <= n; i++) {
    links.push([i, 1, 0, i, 0, 'IMAGE']);
    nodes.push({
      id: i,
      type: 'SaveImage',
      mode: 0,
      inputs: [{ name: 'images', type: 'IMAGE', link: i }],
      outputs: [],
      widgets_values: [`%Empty Image.width%_%Missing.x%_${i}`],
    });
  }
  return { version: 0.4, last_node_id: n, last_link_id: n, nodes, links, extra: {} };
}

/** A chain of `hops` Reroutes read by `readers` PreviewImage nodes at its end. */
export function rerouteChainWorkflow(hops: number, readers: number): Record<string, unknown> {
  const nodes: Array<Record<string, unknown>> = [];
  const links: unknown[] = [];
  let link = 0;
  nodes.push({ id: 1, type: 'EmptyImage', mode: 0, inputs: [], outputs: [], widgets_values: [8, 8, 1, 0] });
  let prev = 1;
  for (let h = 0; h < hops; h++) {
    const id = 2 + h;
    links.push([++link, prev, 0, id, 0, 'IMAGE']);
    nodes.push({ id, type: 'Reroute', mode: 0, inputs: [{ name: '', type: '*', link }], outputs: [] });
    prev = id;
  }
  for (let r = 0; r < readers; r++) {
    const id = 2 + hops + r;
    links.push([++link, prev, 0, id, 0, 'IMAGE']);
    nodes.push({
      id,
      type: 'PreviewImage',
      mode: 0,
      inputs: [{ name: 'images', type: 'IMAGE', link }],
      outputs: [],
    });
  }
  return { version: 0.4, last_node_id: 2 + hops + readers, last_link_id: link, nodes, links, extra: {} };
}

/**
 * A flat UI workflow the simulator runs: EmptyImage → `n - 2` ImageInvert → SaveImage, plus `muted`
 * muted ImageInvert nodes (converted, never emitted: size without run time).
 */
export function uiInvertChain(n: number, muted = 0, prefix = 'chain'): Record<string, unknown> {
  const nodes: Array<Record<string, unknown>> = [];
  const links: unknown[][] = [];
  const out = (id: number) => [{ name: 'IMAGE', type: 'IMAGE', links: [id] }];
  nodes.push({
    id: 1,
    type: 'EmptyImage',
    mode: 0,
    inputs: [],
    outputs: out(1),
    widgets_values: [8, 8, 1, 0],
  });
  for (let i = 2; i < n; i++) {
    links.push([i - 1, i - 1, 0, i, 0, 'IMAGE']);
    nodes.push({
      id: i,
      type: 'ImageInvert',
      mode: 0,
      inputs: [{ name: 'image', type: 'IMAGE', link: i - 1 }],
      outputs: out(i),
    });
  }
  links.push([n - 1, n - 1, 0, n, 0, 'IMAGE']);
  nodes.push({
    id: n,
    type: 'SaveImage',
    mode: 0,
    inputs: [{ name: 'images', type: 'IMAGE', link: n - 1 }],
    outputs: [],
    widgets_values: [prefix],
  });
  for (let k = 1; k <= muted; k++)
    nodes.push({
      id: n + k,
      type: 'ImageInvert',
      mode: 2,
      inputs: [{ name: 'image', type: 'IMAGE', link: null }],
      outputs: [{ name: 'IMAGE', type: 'IMAGE', links: [] }],
    });
  return { version: 0.4, last_node_id: n + muted, last_link_id: n - 1, nodes, links, extra: {} };
}
