import { chargeLines, formatAmount, isMonthly, monthOf, totalMicros, type PlanPrices } from '../../../functions/billing/charges';

const GiB = 1024 ** 3;

/** The seeded Pro plan's prices (migration 0004). */
const pro: PlanPrices = {
  baseMicros: 49_000_000,
  api_requests: { included: 500_000, unitSize: 1, unitPriceMicros: 100 },
  documents: { included: 10_000, unitSize: 1, unitPriceMicros: 0 },
  storage_bytes: { included: 5 * GiB, unitSize: GiB, unitPriceMicros: 250_000 },
  ai_tokens: { included: 1_000_000, unitSize: 1, unitPriceMicros: 2 },
};

const line = (prices: PlanPrices, usage: Parameters<typeof chargeLines>[1], metric: string) =>
  chargeLines(prices, usage).find((l) => l.metric === metric);

describe('chargeLines', () => {
  it('starts with the base price, then one line per priced metric in manifest order', () => {
    const lines = chargeLines(pro, {});
    expect(lines.map((l) => l.metric)).toEqual(['base', 'api_requests', 'documents', 'storage_bytes', 'ai_tokens']);
    expect(lines[0]).toEqual({ metric: 'base', quantity: 1, billableUnits: 1, amountMicros: 49_000_000 });
    expect(totalMicros(lines)).toBe(49_000_000);
  });

  it('charges nothing up to and including the included quantity, and each unit beyond it', () => {
    expect(line(pro, { api_requests: 500_000 }, 'api_requests')).toEqual({ metric: 'api_requests', quantity: 500_000, billableUnits: 0, amountMicros: 0 });
    expect(line(pro, { api_requests: 500_001 }, 'api_requests')).toMatchObject({ billableUnits: 1, amountMicros: 100 });
    expect(line(pro, { ai_tokens: 1_000_750 }, 'ai_tokens')).toMatchObject({ billableUnits: 750, amountMicros: 1_500 });
  });

  it('rounds a started unit up: one byte over the included storage is a whole GiB', () => {
    expect(line(pro, { storage_bytes: 5 * GiB }, 'storage_bytes')).toMatchObject({ billableUnits: 0, amountMicros: 0 });
    expect(line(pro, { storage_bytes: 5 * GiB + 1 }, 'storage_bytes')).toMatchObject({ billableUnits: 1, amountMicros: 250_000 });
    expect(line(pro, { storage_bytes: 6 * GiB }, 'storage_bytes')).toMatchObject({ billableUnits: 1, amountMicros: 250_000 });
    expect(line(pro, { storage_bytes: 6 * GiB + 1 }, 'storage_bytes')).toMatchObject({ billableUnits: 2, amountMicros: 500_000 });
  });

  it('treats a unit size below 1 as 1, so a bad price can never divide by zero', () => {
    const prices: PlanPrices = { baseMicros: 0, ai_tokens: { included: 0, unitSize: 0, unitPriceMicros: 3 } };
    expect(line(prices, { ai_tokens: 5 }, 'ai_tokens')).toMatchObject({ billableUnits: 5, amountMicros: 15 });
  });

  it('adds base and overage into the total, in integer micro-units', () => {
    const lines = chargeLines(pro, { api_requests: 500_123, ai_tokens: 1_000_500, storage_bytes: 5 * GiB + 1, documents: 12_000 });
    expect(totalMicros(lines)).toBe(49_000_000 + 12_300 + 1_000 + 250_000);
    expect(lines.every((l) => Number.isInteger(l.amountMicros))).toBe(true);
  });

  it('skips metrics a plan does not price, and a missing base price is 0', () => {
    const lines = chargeLines({ ai_tokens: { included: 0, unitSize: 1, unitPriceMicros: 1 } } as unknown as PlanPrices, { ai_tokens: 4, api_requests: 99 });
    expect(lines).toEqual([
      { metric: 'base', quantity: 1, billableUnits: 1, amountMicros: 0 },
      { metric: 'ai_tokens', quantity: 4, billableUnits: 4, amountMicros: 4 },
    ]);
    expect(totalMicros(chargeLines({} as PlanPrices, { api_requests: 1_000 }))).toBe(0);
  });
});

describe('formatAmount', () => {
  it.each([
    [0, '0.00'],
    [4_999, '0.00'],
    [5_000, '0.01'], // half a cent rounds up
    [14_999, '0.01'],
    [15_000, '0.02'],
    [49_000_000, '49.00'],
    [49_263_300, '49.26'],
    [49_265_000, '49.27'],
    [599_400_001, '599.40'],
    [99_995_000, '100.00'],
    [1_234_567_890_123, '1234567.89'],
  ])('formats %i micro-units as %s', (micros, text) => {
    expect(formatAmount(micros)).toBe(text);
  });
});

describe('monthOf', () => {
  it('gives the UTC calendar month, its key and its bounds', () => {
    const m = monthOf(new Date('2026-11-26T07:14:21Z'));
    expect(m.key).toBe('2026-11');
    expect(m.start.toISOString()).toBe('2026-11-01T00:00:00.000Z');
    expect(m.end.toISOString()).toBe('2026-12-01T00:00:00.000Z');
  });

  it('puts the last millisecond of a month in that month and the next instant in the next', () => {
    expect(monthOf(new Date('2026-11-30T23:59:59.999Z')).key).toBe('2026-11');
    expect(monthOf(new Date('2026-12-01T00:00:00.000Z')).key).toBe('2026-12');
  });

  it('crosses the year boundary in UTC, whatever the local offset says', () => {
    const december = monthOf(new Date('2026-12-31T23:59:59.999Z'));
    expect(december).toMatchObject({ key: '2026-12' });
    expect(december.end.toISOString()).toBe('2027-01-01T00:00:00.000Z');
    // 2027-01-01T00:30 in UTC is still 2026-12-31 in New York: UTC decides.
    expect(monthOf(new Date('2027-01-01T00:30:00Z')).key).toBe('2027-01');
    expect(monthOf(new Date('2026-12-31T23:30:00-05:00')).key).toBe('2027-01');
  });

  it('handles February of a leap year', () => {
    const feb = monthOf(new Date('2028-02-29T12:00:00Z'));
    expect(feb.key).toBe('2028-02');
    expect(feb.end.toISOString()).toBe('2028-03-01T00:00:00.000Z');
  });
});

describe('isMonthly', () => {
  it('counts api_requests and ai_tokens per month and the others as standing totals', () => {
    expect(isMonthly('api_requests')).toBe(true);
    expect(isMonthly('ai_tokens')).toBe(true);
    expect(isMonthly('documents')).toBe(false);
    expect(isMonthly('storage_bytes')).toBe(false);
  });
});
