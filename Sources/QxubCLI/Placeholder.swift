public enum QxubCLIPlaceholder {}
