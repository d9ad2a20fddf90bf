/** Typed access to the VS Code webview API: one inbound and one outbound message type per panel. */

interface VsCodeApi<S> {
  postMessage(message: unknown): void;
  getState(): S | undefined;
  setState(state: S): void;
}

declare function acquireVsCodeApi<S>(): VsCodeApi<S>;

export interface HostChannel<In, Out, S> {
  post(message: Out): void;
  onMessage(handler: (message: In) => void): void;
  getState(): S | undefined;
  setState(state: S): void;
}

export function connectToHost<In, Out, S = unknown>(): HostChannel<In, Out, S> {
  const api = acquireVsCodeApi<S>();
  return {
    post: (message) => api.postMessage(message),
    onMessage: (handler) => window.addEventListener('message', (e: MessageEvent<In>) => handler(e.data)),
    getState: () => api.getState(),
    setState: (state) => api.setState(state),
  };
}
