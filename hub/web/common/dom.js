// Small DOM helpers every page uses: find by data-testid, build elements, show messages.

/** The element with this data-testid. */
export function $(testid, root = document) {
  return root.querySelector(`[data-testid="${testid}"]`);
}

/** An element; props: class, testid, dataset, on<event>, true/false attributes, others. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "testid") el.dataset.testid = value;
    else if (name === "dataset") {
      for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    } else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Show `text` in a message element (hidden when empty); `code` goes to data-code. */
export function say(el, text, code = "") {
  el.textContent = text || "";
  el.dataset.code = code || "";
  el.hidden = !text;
}

/** Run `action` with `button` disabled and aria-busy until it settles. */
export async function busy(button, action) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}
