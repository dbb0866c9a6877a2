export { compileFormat, isDateFormat, type Formatted, type Formatter } from './number-format';
export { cellText, columnCodes, DEFAULT_CODES, isIdentifier, isNumeric, type CellText } from './column-format';
