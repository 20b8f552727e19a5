export { RANDOM_MODULE, TIME_MODULE } from './module-url.js';
