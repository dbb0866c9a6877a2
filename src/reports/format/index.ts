export { compileFormat, isDateFormat, type Formatted, type Formatter } from './number-format';
export { cellText, columnCodes, DEFAULT_CODES, isNumeric, unsupportedFormats, type CellText } from './column-format';
