/**
 * Duplicate detection of one queue, as Service Bus implements it for an entity created with
 * `requiresDuplicateDetection: true` (infra/modules/service-bus.bicep creates every queue so).
 *
 * What Azure documents, and what this reproduces
 * (https://learn.microsoft.com/azure/service-bus-messaging/duplicate-detection):
 * - The broker keeps the application-set `MessageId` of every message sent to the entity during the
 *   `duplicateDetectionHistoryTimeWindow` (default 10 minutes; Azure accepts 20 seconds to 7 days). A message
 *   sent with an id seen in the window "is reported as accepted (the send operation succeeds), but the newly sent
 *   message is instantly ignored and dropped". Nothing but the `MessageId` is compared (not the body, not the
 *   scheduled time): a different expiry sent under an old id is lost.
 * - "Scheduled messages are included in duplicate detection": a scheduled message followed by a plain one with
 *   its id drops the plain one, and the other way round. So the id is recorded and checked when the message is
 *   sent or scheduled, not when a scheduled message comes due; a scheduled message is never checked again.
 * - The window is fixed, not sliding: an id is remembered for the window from when it was first accepted,
 *   whether or not that message has since been received, and a dropped duplicate does not extend it
 *   (https://github.com/Azure/azure-service-bus/issues/243, a maintainer's answer: "ASB supports fixed time
 *   history ... Wherever it's handled or not, is unrelated"). Outside the window the same id is accepted again
 *   as a new message (https://github.com/Azure/azure-service-bus/issues/266).
 * - A scheduled message dropped as a duplicate still gets a sequence number back: the sender receives two
 *   different sequence numbers and "the second message is ignored, the first message survives"
 *   (https://github.com/Azure/azure-service-bus/issues/265). The number names no message, so cancelling it
 *   cancels nothing, and the message the sender believes it scheduled does not exist.
 *
 * Where the sources are silent, the stricter reading is taken (an emulator kinder than Azure hides bugs):
 * - Cancelling a scheduled message does not take its id out of the history: scheduling the same id again within
 *   the window is dropped, so a cancel-and-reschedule under one id leaves nothing scheduled.
 * - The sequence number handed back for a dropped scheduled message is a fresh one (the counter moves on, leaving
 *   a gap), never the number of the message that survived: a sender cannot learn the live message's number
 *   from the reply.
 */
export class DuplicateDetectionHistory {
  /** Message id → epoch ms at which it is forgotten. Insertion order is acceptance order, so expiry is FIFO. */
  private readonly seen = new Map<string, number>();

  constructor(readonly windowInMs: number) {
    if (!(windowInMs > 0)) throw new Error('duplicateDetectionHistoryTimeWindowInMs must be positive.');
  }

  /**
   * Records `messageId` and returns true when it was not seen in the window; returns false for a duplicate,
   * which the broker accepts and drops.
   */
  admit(messageId: string, now: number = Date.now()): boolean {
    this.forgetExpired(now);
    if (this.seen.has(messageId)) return false;
    this.seen.set(messageId, now + this.windowInMs);
    return true;
  }

  private forgetExpired(now: number): void {
    for (const [id, until] of this.seen) {
      if (until > now) break;
      this.seen.delete(id);
    }
  }
}
