import { auditResource } from '../../../functions/core/audit';
import type { RouteSpec } from '../../../functions/core/route-spec';
import { routes } from '../../../functions/routes';

const mutating = (audit?: RouteSpec['audit']): RouteSpec => ({ ...routes.deleteDocument, audit });

describe('the audit resource of a request', () => {
  it('takes the type from the manifest and the id from the named path parameter', () => {
    const id = '6f1c2a9e-8d43-4b7a-9c1e-2f3a4b5c6d7e';
    expect(auditResource('deleteDocument', routes.deleteDocument, { documentId: id }, 'acme', {})).toEqual({ type: 'document', id });
  });

  it('takes the id the work reported when the manifest says so', () => {
    expect(auditResource('createDocument', routes.createDocument, {}, 'acme', { id: 'doc-1' })).toEqual({ type: 'document', id: 'doc-1' });
  });

  it('refuses a mutating route that names no audit resource', () => {
    expect(() => auditResource('forgetful', mutating(undefined), { documentId: 'x' }, 'acme', { id: 'x' })).toThrow(
      /forgetful is mutating but names no audit resource/,
    );
  });

  it('refuses a route whose work did not report the id it promised', () => {
    expect(() => auditResource('createDocument', routes.createDocument, {}, 'acme', {})).toThrow(/did not report the id/);
  });

  it('refuses an id parameter that the request does not carry', () => {
    expect(() => auditResource('x', mutating({ type: 'document', id: { param: 'noteId' } }), {}, 'acme', {})).toThrow(/no path parameter noteId/);
  });

  it('names the tenant for a platform operator reading a route without an audit resource', () => {
    expect(auditResource('listDocuments', routes.listDocuments, {}, 'acme', {})).toEqual({ type: 'tenant', id: 'acme' });
  });
});
