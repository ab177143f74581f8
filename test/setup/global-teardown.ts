import { handles } from './handles';

export default async function globalTeardown(): Promise<void> {
  await handles.stop?.();
}
