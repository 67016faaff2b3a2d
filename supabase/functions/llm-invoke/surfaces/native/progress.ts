// A native stream that has to wait for its turn (WAIT mode, in the admission queue) starts at once
// and says where it stands: `queued` events each time its place is told, then the answer's own events
// (./answer.ts), or an `error` event — the stream has begun, so the status is already 200.
import type { RequestScope } from "../../../_shared/envelope.ts";
import { GatewayError } from "../../../_shared/errors.ts";
import { sanitizeError } from "../../../_shared/sanitize.ts";
import { type InvokeAnswer, isStream, type QueueProgress } from "../../attempt/context.ts";
import { errorFrame, nativeFrames, queuedFrame } from "./answer.ts";
import type { NativeRequest } from "./request.ts";
import type { QueuedStream, SurfaceContext } from "../shared/surface.ts";

/** The places in line told so far, and the frames of the stream that says them. */
export class Progress implements QueuedStream {
  private queue: QueueProgress[] = [];
  private wake: (() => void) | null = null;
  private first: Promise<"queued">;
  private markStarted!: () => void;

  constructor() {
    this.first = new Promise((resolve) => {
      this.markStarted = () => resolve("queued");
    });
  }

  push(progress: QueueProgress): void {
    this.queue.push(progress);
    this.markStarted();
    this.wake?.();
  }

  started(): Promise<"queued"> {
    return this.first;
  }

  async *frames(
    running: Promise<InvokeAnswer>,
    context: () => SurfaceContext<NativeRequest>,
    scope: Pick<RequestScope, "note" | "annotate">,
  ): AsyncGenerator<string> {
    let settled = false;
    const done = running.then(() => {}, () => {}).finally(() => {
      settled = true;
      this.wake?.();
    });
    let answered = false;
    try {
      for (;;) {
        while (this.queue.length > 0) yield queuedFrame(this.queue.shift()!);
        if (settled) break;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = null;
      }
      await done;
      let answer: InvokeAnswer;
      try {
        answer = await running;
      } catch (error) {
        if (!(error instanceof GatewayError)) {
          scope.note(`unexpected error: ${sanitizeError(error, { maxLength: 500 })}`);
        }
        scope.annotate({ stream_error: error instanceof GatewayError ? error.code : "internal_error" });
        yield errorFrame(
          error instanceof GatewayError
            ? error
            : new GatewayError("internal_error", "Unexpected error; it has been logged with this request_id."),
          context().requestId,
        );
        return;
      }
      answered = true;
      yield* nativeFrames(answer, context());
    } finally {
      // The caller went away while waiting: an answer that still comes is nobody's; end it.
      if (!answered) void running.then((a) => (isStream(a) ? a.cancel() : undefined), () => {});
    }
  }
}
