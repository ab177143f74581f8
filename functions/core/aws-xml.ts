/**
 * The XML that S3 (REST-XML) and STS (Query) answer with, and the little S3 is sent: elements, text and
 * the five entities plus character references. Enough for AWS's answers (no DTDs, no CDATA in the
 * operations called here); attributes are skipped, as the SDK's deserializers skip them for these shapes.
 */
import { AwsServiceError, type HttpResponse, type ResponseMetadata } from './aws-client';

export interface XmlElement {
  readonly name: string;
  readonly children: XmlElement[];
  /** The element's own text, entities decoded (the text of its children not included). */
  text: string;
}

const ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_m, entity: string) =>
    entity.startsWith('#x') ? String.fromCodePoint(parseInt(entity.slice(2), 16)) : entity.startsWith('#') ? String.fromCodePoint(Number(entity.slice(1))) : ENTITIES[entity]!,
  );
}

/** The document's root element; throws on text that is not well-formed enough to read. */
export function parseXml(xml: string): XmlElement {
  const root: XmlElement = { name: '', children: [], text: '' };
  const stack: XmlElement[] = [root];
  const tag = /<(\/?)([^\s/>!?]+)[^>]*?(\/?)>|<\?[\s\S]*?\?>|<!--[\s\S]*?-->|<!\[CDATA\[([\s\S]*?)\]\]>|<![^>]*>/g;
  let at = 0;
  for (let match = tag.exec(xml); match !== null; match = tag.exec(xml)) {
    const current = stack[stack.length - 1]!;
    current.text += decode(xml.slice(at, match.index));
    at = tag.lastIndex;
    const [, closing, name, selfClosing, cdata] = match;
    if (cdata !== undefined) current.text += cdata;
    if (name === undefined) continue;
    if (closing) {
      if (current.name !== name || stack.length === 1) throw new Error(`malformed XML: </${name}> closes <${current.name}>`);
      stack.pop();
      continue;
    }
    const element: XmlElement = { name, children: [], text: '' };
    current.children.push(element);
    if (!selfClosing) stack.push(element);
  }
  if (stack.length !== 1 || root.children.length !== 1) throw new Error('malformed XML: no single root element');
  return root.children[0]!;
}

/** The first child named `name`. */
export function child(element: XmlElement | undefined, name: string): XmlElement | undefined {
  return element?.children.find((c) => c.name === name);
}

/** Every child named `name`, in order. */
export function children(element: XmlElement | undefined, name: string): XmlElement[] {
  return element?.children.filter((c) => c.name === name) ?? [];
}

/** The text of the first child named `name`, or `undefined` when there is none. */
export function textOf(element: XmlElement | undefined, name: string): string | undefined {
  return child(element, name)?.text;
}

export function xmlNumber(element: XmlElement | undefined, name: string): number | undefined {
  const text = textOf(element, name);
  return text === undefined ? undefined : Number(text);
}

export function xmlBoolean(element: XmlElement | undefined, name: string): boolean | undefined {
  const text = textOf(element, name);
  return text === undefined ? undefined : text === 'true';
}

export function xmlDate(element: XmlElement | undefined, name: string): Date | undefined {
  const text = textOf(element, name);
  return text === undefined ? undefined : new Date(text);
}

/** Only the members present: the SDK's outputs have no `undefined` members for absent elements. */
export function present<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) if (value[key] === undefined) delete value[key];
  return value;
}

/** A list member: absent when the answer has no such element, as the SDK's. */
export function list<T>(elements: XmlElement[], read: (e: XmlElement) => T): T[] | undefined {
  return elements.length === 0 ? undefined : elements.map(read);
}

const ELEMENT_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;', '"': '&quot;', "'": '&apos;', '<': '&lt;', '>': '&gt;', '\r': '&#x0D;', '\n': '&#x0A;', '\u0085': '&#x85;', '\u2028': '&#x2028;',
};

/** Element text escaped as the SDK's XML builder escapes it. */
export function escapeXml(text: string): string {
  return text.replace(/[&"'<>\r\n\u0085\u2028]/g, (c) => ELEMENT_ESCAPES[c]!);
}

/**
 * The service's error in an XML answer (S3's `<Error>`, the Query protocol's `<ErrorResponse><Error>`),
 * as the SDK's REST-XML and Query deserializers name it: its `Code` (`NotFound` for a bare 404, else
 * `Unknown`), its `Message` (without one, what the SDK says: `UnknownError` for S3,
 * `Unknown` for the Query protocol).
 */
export function xmlServiceError(response: HttpResponse, metadata: ResponseMetadata, unknownMessage: string): AwsServiceError {
  let error: XmlElement | undefined;
  try {
    const root = parseXml(response.body.toString('utf8'));
    error = root.name === 'Error' ? root : child(root, 'Error');
  } catch {
    // No XML (a HEAD's bare status, a proxy's page): the status alone names it.
  }
  const name = textOf(error, 'Code') ?? (response.statusCode === 404 ? 'NotFound' : 'Unknown');
  const message = textOf(error, 'Message') ?? textOf(error, 'message') ?? unknownMessage;
  return new AwsServiceError(name, message, response.statusCode >= 500 ? 'server' : 'client', metadata);
}

/** A 2xx answer read by `read`; any other answer thrown as the service's XML error. */
export function xmlReader<O>(
  read: (root: XmlElement | undefined, response: HttpResponse) => O,
  options: { readonly body?: boolean; readonly unknownMessage?: string } = {},
): (response: HttpResponse, metadata: ResponseMetadata) => O {
  const { body = true, unknownMessage = 'UnknownError' } = options;
  return (response, metadata) => {
    if (response.statusCode < 200 || response.statusCode >= 300) throw xmlServiceError(response, metadata, unknownMessage);
    return read(body ? parseXml(response.body.toString('utf8')) : undefined, response);
  };
}
