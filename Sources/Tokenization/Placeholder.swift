public enum TokenizationPlaceholder {}
