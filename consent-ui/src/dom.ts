/** DOM helpers of the consent UI: agent data is only ever inserted as text (never as markup). */

export type Child = Node | string | null | undefined | false;

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: { class?: string; id?: string; attrs?: Record<string, string> } = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (props.class) e.className = props.class;
  if (props.id) e.id = props.id;
  for (const [k, v] of Object.entries(props.attrs ?? {})) e.setAttribute(k, v);
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return e;
}

export function button(label: string, cls: string, onClick: () => void): HTMLButtonElement {
  const b = el('button', { class: cls, attrs: { type: 'button' } }, label);
  b.addEventListener('click', onClick);
  return b;
}

/** The nodes of a list of children, without the empty ones. */
export function nodes(children: Child[]): (Node | string)[] {
  return children.filter((n): n is Node | string => n !== null && n !== undefined && n !== false);
}
