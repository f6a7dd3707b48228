// Node class names that older ComfyUI versions saved differently from today's: names with stray
// surrounding whitespace, and classes ComfyUI has since renamed. A saved name that the node
// definitions lack resolves to today's name when the definitions have that one (never otherwise),
// and the conversion reports it as a warning.
import type { ConversionIssue, NodeDefs } from './types.ts';

/** A renamed class: today's name, and its inputs' renames (widget values map by position). */
interface Rename {
  to: string;
  inputs?: Readonly<Record<string, string>>;
}

/**
 * Renames ComfyUI itself registers as pure replacements (comfy_extras/nodes_replacements.py,
 * served by `GET /node_replacements`); replacements that rewire inputs (ImageBatch →
 * BatchImagesNode, ImageScaleBy → ResizeImageMaskNode, ResizeImagesByLongerEdge →
 * ImageScaleToMaxDimension) are left out: their old classes still exist or need value mapping.
 */
export const NODE_RENAMES: Readonly<Record<string, Rename>> = {
  // Typo fix: SDV → SVD.
  SDV_img2vid_Conditioning: { to: 'SVD_img2vid_Conditioning' },
  // T2I adapters load through the ControlNet loader; its one widget was renamed.
  T2IAdapterLoader: { to: 'ControlNetLoader', inputs: { t2i_adapter_name: 'control_net_name' } },
  // The animation variants were merged into the plain 3D nodes.
  Load3DAnimation: { to: 'Load3D' },
  Preview3DAnimation: { to: 'Preview3D' },
};

/** How a saved class name resolved: today's name, input renames, and the warning to report. */
export interface ResolvedType {
  type: string;
  inputs: Readonly<Record<string, string>> | undefined;
  issue: ConversionIssue | undefined;
}

/** Resolves a saved class name against the definitions (unchanged when they have it or no alias fits). */
export function resolveNodeType(saved: string, defs: NodeDefs, nodeId: string): ResolvedType {
  if (Object.hasOwn(defs, saved)) return { type: saved, inputs: undefined, issue: undefined };
  const trimmed = saved.trim();
  let type: string | undefined;
  let inputs: Readonly<Record<string, string>> | undefined;
  if (trimmed !== saved && Object.hasOwn(defs, trimmed)) type = trimmed;
  else {
    const rename = Object.hasOwn(NODE_RENAMES, trimmed) ? NODE_RENAMES[trimmed] : undefined;
    if (rename && Object.hasOwn(defs, rename.to)) {
      type = rename.to;
      inputs = rename.inputs;
    }
  }
  if (type === undefined) return { type: saved, inputs: undefined, issue: undefined };
  return {
    type,
    inputs,
    issue: {
      severity: 'warning',
      code: 'node_type_renamed',
      message: `node ${nodeId} was saved as ${JSON.stringify(saved)}, which ComfyUI now calls ${JSON.stringify(type)}; converted as ${type}`,
      node_id: nodeId,
      node_type: type,
      saved_type: saved,
    },
  };
}
