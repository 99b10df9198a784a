// Questions the agent asks during a reply (opencode's question tool), shown inline as a card:
// each question with its choices (one, or several where allowed) and, unless the question
// forbids it, a box for an answer of one's own; Answer or Dismiss. They come on the session
// stream (its `requests` event), never polled; answered cards stay with their answers.
import { api } from "./api.js";
import { h } from "./dom.js";
import { MOVED_ON, Prompts } from "./prompts.js";

let forms = 0; // a unique name per card for its radio groups

function outcome(question) {
  if (question.dismissed) return "Dismissed.";
  if (!question.answers) return MOVED_ON;
  return question.questions.map((asked, i) => `${asked.header || asked.question}: ${question.answers[i].join(", ")}`).join(" · ");
}

export class QuestionPrompts extends Prompts {
  constructor(placeFor) {
    super((question) => question.question_id, placeFor);
  }

  settle(card, question) {
    card.dataset.answered = question.dismissed ? "dismissed" : question.answers ? "answered" : "expired";
    card.querySelector(".prompt-actions").replaceChildren(h("p", { class: "answer" }, outcome(question)));
  }

  build(question) {
    forms += 1;
    const fields = question.questions.map((asked, i) => this.field(asked, `q${forms}-${i}`));
    const error = h("span", { class: "error", role: "alert" });
    const form = h(
      "form",
      { class: "prompt-actions", onsubmit: (event) => (event.preventDefault(), this.answer(question, fields, card, error)) },
      ...fields.map((f) => f.element),
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary" }, "Answer"),
        h("button", { type: "button", class: "ghost", onclick: () => this.send(question, null, card, error) }, "Dismiss"),
        error,
      ),
    );
    const card = h("div", { class: "prompt question", role: "group", "aria-label": "Question from the agent" },
      h("p", {}, h("strong", {}, "The agent asks")),
      form,
    );
    return card;
  }

  field(asked, name) {
    const type = asked.multiple ? "checkbox" : "radio";
    const choices = asked.options.map((option) =>
      h("label", { class: "choice" },
        h("input", { type, name, value: option.label }),
        " ", option.label,
        option.description ? h("span", { class: "hint" }, ` — ${option.description}`) : null,
      ),
    );
    const own = asked.custom ? h("input", { type: "text", class: "own-answer", "aria-label": "Your own answer", placeholder: "Or type your own answer" }) : null;
    const element = h("fieldset", {},
      h("legend", {}, asked.header ? `${asked.header}: ${asked.question}` : asked.question),
      ...choices,
      own,
    );
    const value = () => {
      const picked = [...element.querySelectorAll("input:checked")].map((input) => input.value);
      const typed = own?.value.trim();
      if (typed) return asked.multiple ? [...picked, typed] : [typed];
      return picked;
    };
    return { element, value };
  }

  answer(question, fields, card, error) {
    const answers = fields.map((f) => f.value());
    if (answers.some((a) => a.length === 0)) {
      error.textContent = " Pick or type an answer to every question.";
      return;
    }
    this.send(question, answers, card, error);
  }

  async send(question, answers, card, error) {
    const buttons = card.querySelectorAll("button");
    for (const button of buttons) button.disabled = true;
    error.textContent = "";
    try {
      const body = answers === null ? { dismiss: true } : { answers };
      const { question: answered } = await api("POST", `/api/questions/${question.question_id}/answer`, body);
      this.settle(card, answered);
    } catch (failure) {
      for (const button of buttons) button.disabled = false;
      error.textContent = ` ${failure.message}`;
    }
  }
}
