// What permission and question cards share: the requests the session stream last sent, one
// card per request placed with its reply, and a card settled once its request stops pending.
export const MOVED_ON = "No longer needed: the reply moved on.";

export class Prompts {
  // idOf: request -> its ID; placeFor: message_id -> the element its card goes into.
  constructor(idOf, placeFor) {
    this.idOf = idOf;
    this.placeFor = placeFor;
    this.cards = new Map();
    this.latest = [];
  }

  // The session's requests as the stream last sent them.
  update(requests) {
    this.latest = requests;
    this.render();
  }

  // Place what is known; a request whose reply is not on the page yet waits for the next call.
  render() {
    if (this.stopped) return;
    for (const request of this.latest) {
      const card = this.cards.get(this.idOf(request)) ?? this.show(request);
      if (card && request.status !== "pending" && !card.dataset.answered) this.settle(card, request);
    }
  }

  stop() {
    this.stopped = true;
  }

  // Build the request's card (the subclass's `build`) into its reply, if that is on the page yet.
  show(request) {
    const place = this.placeFor(request.message_id);
    if (!place) return null;
    const card = this.build(request);
    this.cards.set(this.idOf(request), card);
    place.append(card);
    if (request.status === "pending") card.scrollIntoView({ block: "nearest" });
    return card;
  }
}
