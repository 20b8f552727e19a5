const SYSCALL_PREFIX = '__NR_';

// asm-generic/unistd.h defines these with the __NR_ prefix, but they are range markers, not
// system calls: __NR_syscalls is one past the last number and __NR_arch_specific_syscall is the
// first number of a block reserved for per-arch calls.
const NOT_SYSCALLS = new Set(['syscalls', 'arch_specific_syscall']);

/**
 * Turns the macros of a unistd header into a syscall name -> number map.
 *
 * Values are resolved through other macros, because asm-generic/unistd.h spells the calls that
 * differ between 32- and 64-bit ABIs as `#define __NR_fcntl __NR3264_fcntl`; the `__NR3264_*`
 * helpers themselves are not syscall names.
 */
export function syscallNumbersFromMacros(macros) {
  const table = new Map();
  for (const macro of macros.keys()) {
    if (!macro.startsWith(SYSCALL_PREFIX)) continue;
    const name = macro.slice(SYSCALL_PREFIX.length);
    if (NOT_SYSCALLS.has(name)) continue;
    table.set(name, evaluateMacro(macro, macros, new Set()));
  }
  assertUniqueNumbers(table);
  return table;
}

function evaluateMacro(name, macros, resolving) {
  const body = macros.get(name);
  if (body === undefined) {
    throw new Error(`macro ${name} is referenced but not defined`);
  }
  if (resolving.has(name)) {
    throw new Error(`macro ${name} refers to itself`);
  }
  resolving.add(name);
  const value = evaluateExpression(body, (identifier) =>
    evaluateMacro(identifier, macros, resolving),
  );
  resolving.delete(name);
  return value;
}

/**
 * Evaluates the small expression language the unistd headers use: integer literals, macro
 * names, parentheses, `+` and `-`. Anything else is an error rather than a guess.
 */
export function evaluateExpression(text, resolveIdentifier) {
  const tokens = tokenize(text);
  let position = 0;

  const peek = () => tokens[position];
  const take = () => tokens[position++];

  function sum() {
    let value = operand();
    while (peek() === '+' || peek() === '-') {
      const operator = take();
      const right = operand();
      value = operator === '+' ? value + right : value - right;
    }
    return value;
  }

  function operand() {
    const token = take();
    if (token === undefined) {
      throw new Error(`unexpected end of expression '${text}'`);
    }
    if (token === '(') {
      const value = sum();
      if (take() !== ')') {
        throw new Error(`missing ')' in expression '${text}'`);
      }
      return value;
    }
    if (/^\d/.test(token)) {
      return parseCInteger(token);
    }
    if (/^[A-Za-z_]/.test(token)) {
      return resolveIdentifier(token);
    }
    throw new Error(`unexpected '${token}' in expression '${text}'`);
  }

  const value = sum();
  if (position !== tokens.length) {
    throw new Error(`cannot evaluate expression '${text}'`);
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error(`expression '${text}' is not a syscall number`);
  }
  return value;
}

function parseCInteger(token) {
  const digits = token.replace(/[uUlL]+$/, '');
  if (/^0[xX]/.test(digits)) return Number.parseInt(digits.slice(2), 16);
  if (/^0[0-7]+$/.test(digits)) return Number.parseInt(digits.slice(1), 8);
  if (/^(0|[1-9]\d*)$/.test(digits)) return Number.parseInt(digits, 10);
  throw new Error(`bad integer literal '${token}'`);
}

function tokenize(text) {
  const tokens = [];
  const pattern = /\s*(0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*|[A-Za-z_]\w*|[()+-])/y;
  let index = 0;
  while (index < text.length) {
    if (/^\s*$/.test(text.slice(index))) break;
    pattern.lastIndex = index;
    const match = pattern.exec(text);
    if (!match) {
      throw new Error(`cannot tokenize expression '${text}'`);
    }
    tokens.push(match[1]);
    index = pattern.lastIndex;
  }
  return tokens;
}

function assertUniqueNumbers(table) {
  const owners = new Map();
  for (const [name, number] of table) {
    const owner = owners.get(number);
    if (owner !== undefined) {
      throw new Error(`syscalls ${owner} and ${name} share number ${number}`);
    }
    owners.set(number, name);
  }
}
