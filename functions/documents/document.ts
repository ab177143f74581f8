/** The document resource: its row and its JSON shape (what a client may send is the manifest's schema). */

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
