/** Plain-data result of the layer sensitivity probes (layerSensitivity.ts), importable by webviews. */

export interface LayerSensitivity {
  name: string;
  /** Relative deviation of the model output with only this layer quantized at the reference. */
  modelDeviation: number;
  /** The layer's own relative squared output error there. */
  layerError: number;
  sensitivity: number;
}
