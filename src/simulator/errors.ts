// Error classes of the simulator. `NodeExecutionError` carries what ComfyUI reports in an
// execution_error (Python exception type and message); the others are lifecycle/usage errors.

/** Base class: every simulator error has a stable `code`. */
export class SimulatorError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A node raised while executing: becomes an `execution_error` message. */
export class NodeExecutionError extends SimulatorError {
  readonly exceptionType: string;
  readonly traceback: string[];
  constructor(exceptionType: string, message: string, traceback: string[] = []) {
    super('node_execution_failed', message);
    this.exceptionType = exceptionType;
    this.traceback = traceback;
  }
}

/** The prompt was interrupted (POST /interrupt); becomes `execution_interrupted`. */
export class InterruptedError extends SimulatorError {
  constructor() {
    super('interrupted', 'Processing interrupted');
  }
}

/** The instance was crashed or closed while work was in flight. */
export class InstanceStoppedError extends SimulatorError {
  constructor() {
    super('instance_stopped', 'The simulated instance stopped');
  }
}

/** Bad options given to startSimulator or the CLI. */
export class SimulatorConfigError extends SimulatorError {
  constructor(message: string) {
    super('simulator_config', message);
  }
}
