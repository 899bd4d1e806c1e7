// `k6/metrics`: custom metrics, their samples sent to the runner at the end of each iteration.
import { define, record } from '../runtime.mjs';

class Metric {
  constructor(name, type, isTime = false) {
    this.name = name;
    this.type = type;
    this.isTime = Boolean(isTime);
    define(name, type, this.isTime);
  }

  add(value, tags = {}) {
    const number = typeof value === 'boolean' ? (value ? 1 : 0) : Number(value);
    record(this.name, this.type, this.isTime, number, tags);
  }
}

export class Counter extends Metric { constructor(name, isTime) { super(name, 'counter', isTime); } }
export class Gauge extends Metric { constructor(name, isTime) { super(name, 'gauge', isTime); } }
export class Rate extends Metric { constructor(name, isTime) { super(name, 'rate', isTime); } }
export class Trend extends Metric { constructor(name, isTime) { super(name, 'trend', isTime); } }

export default { Counter, Gauge, Rate, Trend };
