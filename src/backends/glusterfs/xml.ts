// Just enough XML for the gluster CLI's `--xml` output: elements, text and entities. Attributes are
// skipped (the CLI repeats what matters in child elements), as are the declaration and comments.

export interface XmlNode {
  name: string;
  text: string;
  children: XmlNode[];
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (whole, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return ENTITIES[e] ?? whole;
  });
}

/** Parses a document; throws on markup it cannot balance (the caller reports the raw output). */
export function parseXml(text: string): XmlNode {
  const root: XmlNode = { name: '#document', text: '', children: [] };
  const stack: XmlNode[] = [root];
  const tag = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[^>]*?)?)(\/?)>|<\?[\s\S]*?\?>|<!--[\s\S]*?-->/g;
  let last = 0;
  for (let m = tag.exec(text); m; m = tag.exec(text)) {
    const top = stack[stack.length - 1]!;
    top.text += decodeEntities(text.slice(last, m.index));
    last = tag.lastIndex;
    const [, closing, name, , selfClosing] = m;
    if (name === undefined) continue; // declaration or comment
    if (closing) {
      if (top.name !== name) throw new Error(`unbalanced XML: </${name}> closes <${top.name}>`);
      top.text = top.text.trim();
      stack.pop();
      continue;
    }
    const node: XmlNode = { name, text: '', children: [] };
    top.children.push(node);
    if (!selfClosing) stack.push(node);
  }
  if (stack.length !== 1) throw new Error(`unbalanced XML: <${stack[stack.length - 1]!.name}> is never closed`);
  return root;
}

/** The first child named name, following a path of names: child(doc, 'cliOutput', 'opRet'). */
export function child(node: XmlNode | undefined, ...path: string[]): XmlNode | undefined {
  let n = node;
  for (const name of path) n = n?.children.find((c) => c.name === name);
  return n;
}

export function children(node: XmlNode | undefined, name: string): XmlNode[] {
  return node?.children.filter((c) => c.name === name) ?? [];
}

export function textOf(node: XmlNode | undefined, ...path: string[]): string {
  return child(node, ...path)?.text ?? '';
}
