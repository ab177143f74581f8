/**
 * CloudWatch EMF metrics, byte for byte the blobs and warnings of Powertools' Metrics 2.36
 * (`@aws-lambda-powertools/metrics`, kept as a dev dependency: test/integration/logger-reference.test.ts
 * compares both outputs), for what the functions use of it, without its import cost.
 *
 * What is reproduced:
 * - `addDimension`, `addDimensions` (a dimension set of its own), `addMetadata`, `addMetric(name, unit,
 *   value)` (a metric added again becomes an array of values; another unit for it throws), with
 *   Powertools' checks, warnings and errors: dimension names and values non-empty strings, at most 29
 *   dimensions besides `service`, a dimension set again, metric names of 1–255 characters, numeric values,
 *   known units, 100 metrics or 100 values of one metric at most before a blob is published, keys shared by
 *   metrics, dimensions and metadata.
 * - `publishStoredMetrics()`: one JSON line on stdout, `_aws` (Timestamp `Date.now()`, Namespace,
 *   Dimensions, Metrics), then metadata, dimensions and the metrics' values; nothing but a warning on stderr
 *   when no metric is stored; everything stored is cleared either way.
 * - The namespace (the constructor's, else `POWERTOOLS_METRICS_NAMESPACE`, else `default_namespace` with a
 *   warning), the `service` dimension (the constructor's, else `POWERTOOLS_SERVICE_NAME`, else
 *   `service_undefined`), `POWERTOOLS_METRICS_DISABLED` (else off unless `POWERTOOLS_DEV`): disabled, no
 *   blob is written but the warnings are.
 * - Output: functions/core/console-line.ts (`console.log` for blobs, `console.warn` for warnings).
 *
 * Deliberately absent (the functions use none of it): default dimensions beyond `service`
 * (`setDefaultDimensions`), high-resolution metrics, `setTimestamp`, `singleMetric`, the cold-start metric
 * (`captureColdStartMetric`, `POWERTOOLS_METRICS_FUNCTION_NAME`), `throwOnEmptyMetrics`, `logMetrics`/middy,
 * a custom logger or config service, and the per-invocation scoping of what is stored where one process
 * serves invocations concurrently (`AWS_LAMBDA_MAX_CONCURRENCY`, which no function enables): the request
 * wrapper adds and publishes a request's metrics without awaiting in between; the job runner adds its
 * failures over its batch and publishes them at the batch's end, one invocation at a time.
 */
import { metricsEnvironment } from './config';
import { writeLine } from './console-line';

export const MetricUnit = {
  Seconds: 'Seconds',
  Microseconds: 'Microseconds',
  Milliseconds: 'Milliseconds',
  Bytes: 'Bytes',
  Kilobytes: 'Kilobytes',
  Megabytes: 'Megabytes',
  Gigabytes: 'Gigabytes',
  Terabytes: 'Terabytes',
  Bits: 'Bits',
  Kilobits: 'Kilobits',
  Megabits: 'Megabits',
  Gigabits: 'Gigabits',
  Terabits: 'Terabits',
  Percent: 'Percent',
  Count: 'Count',
  BytesPerSecond: 'Bytes/Second',
  KilobytesPerSecond: 'Kilobytes/Second',
  MegabytesPerSecond: 'Megabytes/Second',
  GigabytesPerSecond: 'Gigabytes/Second',
  TerabytesPerSecond: 'Terabytes/Second',
  BitsPerSecond: 'Bits/Second',
  KilobitsPerSecond: 'Kilobits/Second',
  MegabitsPerSecond: 'Megabits/Second',
  GigabitsPerSecond: 'Gigabits/Second',
  TerabitsPerSecond: 'Terabits/Second',
  CountPerSecond: 'Count/Second',
  NoUnit: 'None',
} as const;

export type MetricUnit = (typeof MetricUnit)[keyof typeof MetricUnit];

const UNITS: readonly string[] = Object.values(MetricUnit);
/** EMF's 30 dimensions, one of them `service`. */
const MAX_DIMENSION_COUNT = 29;
const MAX_METRICS = 100;
const MAX_METRIC_VALUES = 100;
const MAX_METRIC_NAME_LENGTH = 255;
const DEFAULT_NAMESPACE = 'default_namespace';

export interface MetricsOptions {
  readonly namespace?: string;
  readonly serviceName?: string;
}

interface StoredMetric {
  readonly name: string;
  readonly unit: MetricUnit;
  value: number | number[];
}

/** Powertools' isStringUndefinedNullEmpty. */
function blank(value: unknown): boolean {
  return typeof value !== 'string' || value.trim().length === 0;
}

export class Metrics {
  readonly #namespace: string;
  readonly #dev: boolean;
  readonly #disabled: boolean;
  readonly #defaultDimensions: Record<string, string>;
  #dimensions: Record<string, string> = {};
  #dimensionSets: Record<string, string>[] = [];
  #metadata: Record<string, unknown> = {};
  #metrics: Record<string, StoredMetric> = {};

  constructor(options: MetricsOptions = {}) {
    const env = metricsEnvironment();
    this.#dev = env.devMode;
    this.#disabled = env.disabled;
    this.#namespace = options.namespace || env.namespace;
    this.#defaultDimensions = this.#sanitize({ service: options.serviceName || env.serviceName || 'service_undefined' });
  }

  #warn(message: string): void {
    writeLine('warn', message, this.#dev);
  }

  #tooManyDimensions(keys: Iterable<string>): void {
    if (new Set(keys).size > MAX_DIMENSION_COUNT) {
      throw new RangeError(`The number of metric dimensions must be lower than ${MAX_DIMENSION_COUNT}`);
    }
  }

  addDimension(name: string, value: string): this {
    // The same checks and warnings as a set's (an invalid one is dropped, one added again is warned of).
    if (!Object.hasOwn(this.#sanitize({ [name]: value }), name)) return this;
    this.#tooManyDimensions([...Object.keys(this.#defaultDimensions), ...Object.keys(this.#dimensions), name]);
    this.#dimensions[name] = value;
    return this;
  }

  /** A dimension set of its own (with `service`), beside the one `addDimension` builds. */
  addDimensions(dimensions: Record<string, string>): this {
    const set = this.#sanitize(dimensions);
    this.#tooManyDimensions([...Object.keys(this.#defaultDimensions), ...Object.keys(set)]);
    this.#dimensionSets.push(set);
    return this;
  }

  addMetadata(key: string, value: unknown): this {
    this.#metadata[key] = value;
    return this;
  }

  addMetric(name: string, unit: MetricUnit, value: number): this {
    if (typeof name !== 'string') throw new Error(`${name} is not a valid string`);
    if (name.length < 1 || name.length > MAX_METRIC_NAME_LENGTH) {
      throw new RangeError(`The metric name should be between 1 and ${MAX_METRIC_NAME_LENGTH} characters`);
    }
    if (typeof value !== 'number') throw new RangeError(`${value} is not a valid number`);
    if (!UNITS.includes(unit)) throw new RangeError(`Invalid metric unit '${unit}', expected either option: ${UNITS.join(',')}`);
    if (Object.keys(this.#metrics).length >= MAX_METRICS) this.publishStoredMetrics();
    const stored = this.#metrics[name];
    if (stored === undefined) {
      this.#metrics[name] = { name, unit, value };
      return this;
    }
    if (stored.unit !== unit) {
      throw new Error(
        `Metric "${name}" has already been added with unit "${stored.unit}", but we received unit "${unit}". Did you mean to use metric unit "${stored.unit}"?`,
      );
    }
    if (!Array.isArray(stored.value)) stored.value = [stored.value];
    stored.value.push(value);
    if (stored.value.length === MAX_METRIC_VALUES) this.publishStoredMetrics();
    return this;
  }

  /** Writes the stored metrics as one EMF blob (a warning instead when there are none) and clears them. */
  publishStoredMetrics(): this {
    const hasMetrics = Object.keys(this.#metrics).length > 0;
    if (!hasMetrics) {
      this.#warn(
        'No application metrics to publish. The cold-start metric may be published if enabled. ' +
          'If application metrics should never be empty, consider using `throwOnEmptyMetrics`',
      );
    }
    try {
      if (!this.#disabled) {
        const blob = this.#serialize();
        if (hasMetrics) writeLine('log', JSON.stringify(blob), this.#dev);
      }
    } finally {
      this.#metrics = {};
      this.#dimensions = {};
      this.#dimensionSets = [];
      this.#metadata = {};
    }
    return this;
  }

  #serialize(): Record<string, unknown> {
    const stored = Object.values(this.#metrics);
    if (!this.#namespace) this.#warn('Namespace should be defined, default used');
    const values: Record<string, number | number[]> = {};
    for (const { name, value } of stored) values[name] = value;
    const defaults = this.#defaultDimensions;
    const names: string[][] = [];
    if (Object.keys(this.#dimensions).length > 0) names.push([...new Set([...Object.keys(defaults), ...Object.keys(this.#dimensions)])]);
    for (const set of this.#dimensionSets) names.push([...new Set([...Object.keys(defaults), ...Object.keys(set)])]);
    if (names.length === 0 && Object.keys(defaults).length > 0) names.push(Object.keys(defaults));
    this.#checkKeyCollisions(values);
    const sets: Record<string, string> = {};
    for (const set of this.#dimensionSets) Object.assign(sets, set);
    return {
      _aws: {
        Timestamp: Date.now(),
        CloudWatchMetrics: [
          { Namespace: this.#namespace || DEFAULT_NAMESPACE, Dimensions: names, Metrics: stored.map(({ name, unit }) => ({ Name: name, Unit: unit })) },
        ],
      },
      ...this.#metadata,
      ...defaults,
      ...this.#dimensions,
      ...sets,
      ...values,
    };
  }

  /** One key in two roles: the later one wins (warned of), and a metric may share its name with nothing. */
  #checkKeyCollisions(values: Record<string, unknown>): void {
    const seen = new Map<string, string>();
    const see = (key: string, source: string) => {
      const existing = seen.get(key);
      if (existing !== undefined) {
        this.#warn(`EMF key "${key}" is defined as both a ${existing} and ${source}; the ${source} value will take precedence in the serialized output`);
      }
      seen.set(key, source);
    };
    for (const key of Object.keys(this.#metadata)) see(key, 'metadata');
    for (const key of Object.keys(this.#defaultDimensions)) see(key, 'default dimension');
    for (const key of Object.keys(this.#dimensions)) see(key, 'dimension');
    for (const set of this.#dimensionSets) for (const key of Object.keys(set)) see(key, 'dimension set');
    for (const name of Object.keys(values)) {
      const source = seen.get(name);
      if (source !== undefined) throw new Error(`EMF key collision on "${name}": registered as both a metric (number) and a ${source} (string)`);
    }
  }

  /** The valid dimensions of `dimensions`, each warned of when invalid or already added. */
  #sanitize(dimensions: Record<string, string>): Record<string, string> {
    const kept: Record<string, string> = {};
    for (const [key, value] of Object.entries(dimensions)) {
      if (blank(key) || blank(value)) {
        this.#warn(`The dimension ${key} doesn't meet the requirements and won't be added. Ensure the dimension name and value are non empty strings`);
        continue;
      }
      if (Object.hasOwn(this.#dimensions, key) || Object.hasOwn(this.#defaultDimensions ?? {}, key) || Object.hasOwn(kept, key)) {
        this.#warn(`Dimension "${key}" has already been added. The previous value will be overwritten.`);
      }
      kept[key] = value;
    }
    return kept;
  }
}
