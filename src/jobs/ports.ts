// The slices of the comfy/, pool/, io/ and webhooks/ contracts that the job layer uses. Each is a
// Pick<> of the one contract next to its implementation (ComfyClientContract, PoolContract, the io
// classes, WebhookDispatcher), so `tsc` checks the wiring against the real classes; a fake
// implements only its slice.
import type { EventEmitter } from 'node:events';
import type { ComfyClientContract, NodeDef } from '../comfy/index.ts';
import type { InputResolver, OutputDelivery, PrefetchedInputs } from '../io/index.ts';
import type { Logger } from '../logger.ts';
import type { AcquireRequest, InstanceSnapshot, Lease, PoolContract } from '../pool/index.ts';
import type { WebhookDispatcher } from '../webhooks/index.ts';

// The data types are the client SDK's own (jobs/ may import comfy/); only behaviour is sliced.
export type { ApiPrompt, OutputFile, RunEvent, RunResult, ViewResponse } from '../comfy/index.ts';

/**
 * The client calls the job layer makes (runs, recovery's queue and history reads, cancel, output
 * content) and io's, which the runner hands the same client to (input uploads, output reads).
 */
export type ComfyClientLike = Pick<
  ComfyClientContract,
  | 'baseUrl'
  | 'run'
  | 'waitForPrompt'
  | 'getPromptState'
  | 'cancel'
  | 'getQueue'
  | 'getHistories'
  | 'view'
  | 'uploadImage'
>;

/** A slot on one instance: the pool's Lease, holding the client slice above. */
export interface LeaseLike extends Omit<Lease, 'client' | 'signal'> {
  readonly client: ComfyClientLike;
  /** Aborted when the pool declares the instance down: the work on it will not complete. */
  readonly signal?: AbortSignal;
}

/** Node definitions from /object_info, as the pool answers them. */
export type NodeDefs = Record<string, NodeDef>;

/**
 * The Pool calls the job layer makes; the clients and leases it hands out are the slices above. Its
 * events ('capacity', 'instance') are subscribed by name, so a wrapper (fleet's LeasedPool) can forward them.
 */
export interface PoolLike
  extends Pick<PoolContract, 'canEverRun' | 'canRunNow' | 'nodeDefsFor'>,
    Pick<EventEmitter, 'on' | 'off'> {
  tryAcquire(request: AcquireRequest): LeaseLike | null;
  list(): Array<Pick<InstanceSnapshot, 'id' | 'state'> & Partial<Pick<InstanceSnapshot, 'maxJobs'>>>;
  client(id: string): ComfyClientLike | undefined;
}

/** io's InputResolver: resolves a job's inputs onto its instance, optionally fetched ahead. */
export type InputResolverLike = Pick<InputResolver, 'resolve'> & Partial<Pick<InputResolver, 'prefetch'>>;

/** Inputs fetched ahead of an attempt (io's PrefetchedInputs); released when the job ends. */
export type PrefetchedLike = PrefetchedInputs;

/** io's OutputDelivery: delivers a finished run's outputs (inline, storage, link). */
export type OutputDeliveryLike = Pick<OutputDelivery, 'deliver'>;

/** The webhooks module's dispatcher: signed delivery of a job's events, and the URL check at submit. */
export type WebhookDispatcherLike = Pick<WebhookDispatcher, 'send'> &
  Partial<Pick<WebhookDispatcher, 'validateUrl'>>;

/** The jobs layer's logger: the one contract of src/logger.ts. */
export type LoggerLike = Logger;

/** Model downloads a job waits for before it is queued (the models feature provides it). */
export interface ModelProvisionLike {
  /** Resolves once every model is on the instances; rejects with a GatewayError (code, message, details) otherwise. */
  readonly ready: Promise<void>;
  /** Subscribes to download progress (a line for people); returns the unsubscribe. */
  onProgress(listener: (message: string) => void): () => void;
}
