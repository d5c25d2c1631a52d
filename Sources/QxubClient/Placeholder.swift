public enum QxubClientPlaceholder {}
