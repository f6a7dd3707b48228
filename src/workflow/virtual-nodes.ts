// Frontend-only node types (defined by JavaScript, absent from /object_info) and how each behaves.

/** Pass-through nodes: output s carries whatever feeds input s. */
export const PASS_THROUGH_TYPES: ReadonlySet<string> = new Set([
  'Reroute',
  'Reroute (rgthree)',
  'ReroutePrimitive|pysssss',
]);

/** Frontend-only nodes that carry no data into the prompt. */
export const INERT_TYPES: ReadonlySet<string> = new Set([
  'Note',
  'MarkdownNote',
  'Label (rgthree)',
  'Bookmark (rgthree)',
  'Fast Groups Bypasser (rgthree)',
  'Fast Groups Muter (rgthree)',
  'Fast Bypasser (rgthree)',
  'Fast Muter (rgthree)',
  'Fast Actions Button (rgthree)',
  'Note Plus (mtb)',
]);

/** Use-Everywhere broadcasters: their links are injected at queue time from `extra.ue_links`. */
export const USE_EVERYWHERE_TYPES: ReadonlySet<string> = new Set([
  'Anything Everywhere',
  'Anything Everywhere3',
  'Anything Everywhere?',
  'Prompts Everywhere',
  'Seed Everywhere',
]);

/** KJNodes' named Set/Get pairs: a GetNode outputs whatever feeds the SetNode of the same name. */
export const SET_NODE_TYPES: ReadonlySet<string> = new Set(['SetNode']);
/** See SET_NODE_TYPES. */
export const GET_NODE_TYPES: ReadonlySet<string> = new Set(['GetNode']);

/** The legacy frontend-only primitive. */
export const PRIMITIVE_NODE = 'PrimitiveNode';

/** Returns the group-node name for a legacy group-node instance type, else undefined. */
export function groupNodeName(type: string): string | undefined {
  if (type.startsWith('workflow>')) return type.slice('workflow>'.length);
  if (type.startsWith('workflow/')) return type.slice('workflow/'.length);
  return undefined;
}
