// Tiny element builders. Text always goes in as text nodes (zone names come from devices: never parse them as HTML).

const SVG_NS = "http://www.w3.org/2000/svg";

function build(node, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.setAttribute("class", value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    else if (name === "style") node.style.cssText = value; // CSSOM, so a strict Content-Security-Policy allows it
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** HTML element: h("div", {class: "x"}, "text", otherNode). */
export const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);

/** SVG element. */
export const s = (tag, attrs, ...children) => build(document.createElementNS(SVG_NS, tag), attrs, children);

/** Replaces a node's children as ``h`` adds them: null, undefined and false are left out (the DOM's own
 * replaceChildren prints them as the text "null" and "undefined"), arrays are flattened. */
export function fill(node, ...children) {
  node.replaceChildren();
  return build(node, null, children);
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

/** Defines the hatch pattern used for suppressed cells inside an SVG. */
export function hatchDefs(id) {
  return s("defs", {},
    s("pattern", { id, width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
      s("rect", { width: 6, height: 6, fill: "#f3f5f7" }),
      s("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#a9b3bd", "stroke-width": 2.2 })));
}

let uid = 0;
export const uniqueId = (prefix) => `${prefix}-${++uid}`;
