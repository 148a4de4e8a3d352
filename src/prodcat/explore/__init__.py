"""The feasibility study (``prodcat explore``): do a catalogue's products group by category without being taught?
Features are reduced (:mod:`.reduction`), clustered by KMeans and scored against the categories
(:mod:`.clustering`, :mod:`.metrics`), and reported with maps (:mod:`.report`); :mod:`.choices` names the feature
sets and reductions, :mod:`.command` is the command."""
