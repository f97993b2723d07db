// One tooltip per chart, placed next to the pointer (or the keyboard-selected item) inside the chart box.

import { fill, h } from "../dom.js";

export function createTooltip(container) {
  const tip = h("div", { class: "tooltip", role: "status", "aria-live": "polite", hidden: true });
  container.append(tip);
  return {
    show(content, x, y) {
      fill(tip, content);
      tip.hidden = false;
      const box = container.getBoundingClientRect();
      const width = tip.offsetWidth;
      const height = tip.offsetHeight;
      let left = x + 14;
      if (left + width > box.width) left = Math.max(0, x - width - 14);
      let top = y - height / 2;
      top = Math.max(-8, Math.min(top, box.height - height + 8));
      tip.style.left = `${left}px`;
      tip.style.top = `${top}px`;
    },
    hide() {
      tip.hidden = true;
    },
  };
}

/** A "label: value" row for a tooltip; value may be a node. */
export function tipRow(label, value, colour) {
  return h("div", { class: "row" },
    h("span", {}, colour ? h("span", { class: "sw", style: `background:${colour}` }) : null, label),
    h("span", {}, value));
}
