// Public surface of the HTTP layer: the app builder, the composition root, and the route plugins.
export type { AppOptions, RoutePlugin } from './app.ts';
export { buildApp } from './app.ts';
export { installErrorHandling, renderError, sendError } from './errors.ts';
export type { Gateway, GatewayOptions } from './gateway.ts';
export { startGateway } from './gateway.ts';
export { jobEventsRoutes } from './job-events.ts';
export { jobOutputsRoutes } from './job-outputs.ts';
export { jobRoutes } from './jobs.ts';
export { metricsRoutes, registerJobMetrics } from './metrics.ts';
export { promptSyncRoutes } from './prompt-sync.ts';
export { RequestValidationError, zodRoute } from './zod.ts';
