/** The document resource: its row, its JSON shape, and the validation of what a client may send. */
import { BadRequestError } from '../core/errors';
import { requireString } from '../core/http';

export interface DocumentRow {
  id: string;
  tenant_id: string;
  name: string;
  content_type: string;
  size_bytes: string | number;
  status: 'pending' | 'available';
  created_by: string;
  created_at: Date;
}

export function toDocument(row: DocumentRow) {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    contentType: row.content_type,
    sizeBytes: Number(row.size_bytes),
    status: row.status,
    createdBy: row.created_by,
    createdAt: row.created_at.toISOString(),
  };
}

const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;
const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/i;

/** A user's file name: 1–255 characters, no control characters. It is metadata, never a key. */
export function documentName(body: Record<string, unknown>): string {
  const name = requireString(body, 'name', 1, 255);
  if (CONTROL_CHARACTERS.test(name) || name.trim().length === 0) {
    throw new BadRequestError('name must be printable text.');
  }
  return name;
}

export function mediaType(body: Record<string, unknown>): string {
  const value = requireString(body, 'contentType', 3, 255);
  if (!MEDIA_TYPE.test(value)) throw new BadRequestError('contentType must be a media type such as application/pdf.');
  return value.toLowerCase();
}
